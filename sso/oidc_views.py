"""oidc_views routes: see the SSO issue (in progress)."""
