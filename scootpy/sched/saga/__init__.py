"""The saga log: durable job records (StartSaga, StartTask, EndTask, EndSaga) and their state.

Glossary (spec scheduler.md §5):

* **saga** - the durable record of one job; its id is the job id. ``log.py`` holds the ``SagaLog`` protocol,
  ``SagaMessage`` and the errors; ``memory.py`` and ``file.py`` are the two logs.
* **job blob** - StartSaga data: the binary-Thrift ``sched.Job``. **task data** - StartTask/EndTask data: a
  Thrift-JSON ``worker.RunStatus`` (or nothing). Both encodings are in ``codec.py``.
* **state** - what a saga's messages add up to (``state.py``): the job blob, per task Started/Completed flags
  and the last data of each message type, Ended/Aborted. Transitions are validated exactly like the reference.
* **Saga** - the scheduler's write-through handle (``saga.py``): validate, apply, append, roll back on failure.
* **recovery** - which sagas a restarted scheduler resumes (``recovery.py``).
* **group commit** - the file log makes records written at the same moment durable with shared fsyncs.
"""
