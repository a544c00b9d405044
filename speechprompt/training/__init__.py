"""Training: the loop shared by Wav2Seq pretraining and adaptation, and what a run leaves behind.

:mod:`.loop` (``train``), :mod:`.checkpoint` (atomic, exact-resume checkpoints), :mod:`.distributed`
(one process or N under torchrun), :mod:`.log` (JSONL log, learning curve, the experiment's
``run.sh``); ``speechprompt train`` is :mod:`.cli`. Nothing is imported here, so the command line
loads torch only when a verb needs it.
"""
