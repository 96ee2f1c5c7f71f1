"""SSO adapters: SAML 2.0 and OpenID Connect (issue 5)."""
