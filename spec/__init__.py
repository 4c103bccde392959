"""taskmap's language: IR, task mappings, the kernel DSL and the verifier. See spec/SPEC.md."""
