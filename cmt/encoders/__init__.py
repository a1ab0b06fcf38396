"""Per-modality encoders behind one interface: text, face, speech."""
