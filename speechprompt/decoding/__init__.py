"""Decoding: search over a tuned model, and transcription with any number of task prompts.

:mod:`.search` (batched greedy and beam search), :mod:`.joint` (CTC and joint CTC/attention),
:mod:`.transcriber` (``Transcriber``: one frozen backbone, many task prompts), :mod:`.options` (the
decoding options both verbs share); ``speechprompt decode`` is :mod:`.cli_decode` and ``speechprompt
transcribe`` :mod:`.cli_transcribe`. Nothing is imported here, so the command line loads torch only
when a verb needs it.
"""
