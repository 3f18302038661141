"""spaCy components: one module per component."""
