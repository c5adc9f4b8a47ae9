// Worker: the API a scheduler (or workercl) uses to run one command at a time on a worker.
namespace py worker

include "bazel.thrift"

enum Status {
  UNKNOWN = 0,
  PENDING = 1,
  RUNNING = 2,
  COMPLETE = 3,
  FAILED = 4,
  ABORTED = 5,
  TIMEDOUT = 6,
}

struct RunStatus {
  1: required Status status
  2: required string runId
  3: optional string outUri
  4: optional string errUri
  5: optional string error
  6: optional i32 exitCode
  7: optional string snapshotId
  8: optional string jobId
  9: optional string taskId
  10: optional string tag
  11: optional bazel.ActionResult bazelResult
}

struct WorkerStatus {
  1: required list<RunStatus> runs
  2: required bool initialized
  3: required string error
}

struct RunCommand {
  1: required list<string> argv
  2: optional map<string, string> env
  3: optional string snapshotId
  4: optional i32 timeoutMs
  5: optional string jobId
  6: optional string taskId
  7: optional string tag
  8: optional bazel.ExecuteRequest bazelRequest
}

service Worker {
  WorkerStatus QueryWorker()
  RunStatus Run(1: RunCommand cmd)
  RunStatus Abort(1: string runId)
  void Erase(1: string runId)
}
