//! oauth-audit
