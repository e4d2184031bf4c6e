"""Evidence that travels beyond corpusprov: lineage, in-toto/SLSA attestations, Croissant, citations."""
