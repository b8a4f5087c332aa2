"""The challenger arm: a version that passed the offline gate, judged on live traffic.

``policy`` reads how a model's challengers are judged (from its settings view), ``arms``
keeps the arm's state in the database (start, advance, hold, abort, promote, every step
audited), and the serving side (``serve.champion``, ``serve.predictor``) routes requests to
it: in shadow (scored beside the champion, not answered) or as a canary (a sticky share of
the ML traffic answered by it).
"""
