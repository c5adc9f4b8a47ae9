"""The saga log: durable job records (StartSaga, StartTask, EndTask, EndSaga) and their state."""
