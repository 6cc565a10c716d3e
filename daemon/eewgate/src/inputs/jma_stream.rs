//! JMA code-telegram stream links (TCP and serial).
