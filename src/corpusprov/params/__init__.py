"""What a stage is told: params.yaml loading, the params types, scales, policies, defaults."""
