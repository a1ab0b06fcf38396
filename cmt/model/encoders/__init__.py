"""Per-modality encoders behind one interface: text, face, speech.

Text and face encoders can carry weights tuned by Attune (cmt.training.text_tune,
cmt.training.face_tune); their files are read by cmt.model.checkpoint.load.
"""
