// CloudScoot: the API clients use to submit and follow jobs on the scheduler.
namespace py scoot

include "bazel.thrift"

exception InvalidRequest {
  1: optional string message
}

exception CanNotScheduleNow {
  1: optional i64 retryAfterMs
}

exception ScootServerError {
  1: optional i64 retryAfterMs
}

enum JobType {
  UNKNOWN = 1,
  IRON_TESTS = 2,
}

enum RunStatusState {
  UNKNOWN = 0,
  PENDING = 1,
  RUNNING = 2,
  COMPLETE = 3,
  FAILED = 4,
  ABORTED = 5,
  TIMEDOUT = 6,
}

struct RunStatus {
  1: required RunStatusState status
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

struct Command {
  1: list<string> argv
  2: optional map<string, string> envVars
}

struct TaskDefinition {
  1: required Command command
  2: optional string snapshotId
  3: optional string taskId
  4: optional i32 timeoutMs
}

struct JobDefinition {
  1: required list<TaskDefinition> tasks
  2: optional JobType DEPRECATED_jobType
  3: optional i32 defaultTaskTimeoutMs
  4: optional i32 priority
  5: optional string tag
  6: optional string basis
  7: optional string requestor
  8: optional string jobType
}

struct JobId {
  1: required string id
}

enum Status {
  NOT_STARTED = 1,
  IN_PROGRESS = 2,
  COMPLETED = 3,
  ROLLING_BACK = 4,
  ROLLED_BACK = 5,
}

struct JobStatus {
  1: required string id
  2: required Status status
  3: optional map<string, Status> taskStatus
  4: optional map<string, RunStatus> taskData
}

struct OfflineWorkerReq {
  1: required string id
  2: required string requestor
}

struct ReinstateWorkerReq {
  1: required string id
  2: required string requestor
}

struct SchedulerStatus {
  1: required i32 currentTasks
  2: required i32 maxTasks
}

service CloudScoot {
  JobId RunJob(1: JobDefinition job) throws (1: InvalidRequest ir, 2: CanNotScheduleNow cnsn)
  JobStatus GetStatus(1: string jobId) throws (1: InvalidRequest ir, 2: ScootServerError err)
  JobStatus KillJob(1: string jobId) throws (1: InvalidRequest ir, 2: ScootServerError err)
  void OfflineWorker(1: OfflineWorkerReq req) throws (1: InvalidRequest ir, 2: ScootServerError err)
  void ReinstateWorker(1: ReinstateWorkerReq req) throws (1: InvalidRequest ir, 2: ScootServerError err)
  SchedulerStatus GetSchedulerStatus() throws (1: ScootServerError err)
  void SetSchedulerStatus(1: i32 maxTasks) throws (1: InvalidRequest ir, 2: ScootServerError err)
}
