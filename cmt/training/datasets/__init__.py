"""Loaders for emotion corpora in their original layouts.

Every loader yields `Example`s whose `label` is one of cmt.contract.EMOTIONS, mapped
through the label maps in data/labels (which say what they merge or drop).
"""

from cmt.model.labels import Example, LabelMap, load_label_map

__all__ = ["Example", "LabelMap", "load_label_map"]
