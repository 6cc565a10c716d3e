//! Time the administrator password hash on this machine (ADR 0011 records the results):
//! `cargo run --release -p eewgate-webui --example argon2_timing`.

use std::time::Instant;

fn main() -> Result<(), eewgate_webui::auth::AuthError> {
    let password = "a-password-of-some-length";
    let t = Instant::now();
    let hash = eewgate_webui::auth::hash_password(password)?;
    let hashed = t.elapsed();
    let mut verify = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let ok = eewgate_webui::auth::verify_password(password, &hash);
        verify.push(t.elapsed());
        assert!(ok, "the hash verifies");
    }
    verify.sort();
    println!("{hash}");
    println!(
        "hash {hashed:?}; verify median {:?}",
        verify.get(2).copied().unwrap_or_default()
    );
    Ok(())
}
