"""Everything that makes a model and measures it, never needed to serve one: the corpora
registry and splits (corpora), the corpus loaders (datasets), the one feature cache
(features), the one fit loop (fit), fusion training and calibration (train, calibration),
the experts' training, both encoder tuners (text_tune, face_tune), evaluation, baselines
and metrics."""
