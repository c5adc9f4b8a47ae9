"""The scheduler: CloudScoot API, job admission, task assignment, worker driving, saga log and recovery.

Glossary:
  job / task     a job is a list of tasks; a task is one command run on one worker. Job id = saga id.
  saga           the durable record of a job (StartSaga, StartTask, EndTask, EndSaga); GetStatus reads it.
  step / run     ``Scheduler.step()`` does one pass of work; ``run()`` only waits for a wake-up or the tick.
  try            one attempt of a task on one node (``TaskRunner``); a retry is a new try, maybe elsewhere.
  requestor/tag  who submitted a job / its batch label; jobs sharing both are scheduled as one group.
  basis          a client's revision label: a newer tag for the same requestor+basis supersedes older jobs.
  node           a worker, by ``host:port`` (or ``inmemoryN``): healthy, suspended (new, lost, untrusted) or
                 offlined; only healthy nodes receive tasks.
  node group     nodes keyed by the snapshot their last task used, for snapshot affinity.

Module map: definitions (job model, validation), admission, assign (pure assignment), cluster_state,
job_state, task_runner, scheduler (the loop), resume (recovery), stats, config, api/ + handler (Thrift edge),
server (composition), main (the binary).
"""
