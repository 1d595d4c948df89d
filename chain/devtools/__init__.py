"""Development tooling of the chain app: compiling and deploying the contracts, a local anvil,
a software WebAuthn authenticator and a harness that drives the contracts. Used by commands,
tests and benchmarks; never on the request path."""
