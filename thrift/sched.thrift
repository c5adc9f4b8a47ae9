// The scheduler's durable job record: a Job is what the saga log stores as StartSaga data.
namespace py sched

include "bazel.thrift"

struct Command {
  1: required list<string> argv
  2: optional map<string, string> envVars
  3: optional i64 timeout
  4: required string snapshotId
}

struct TaskDefinition {
  1: required Command command
  2: optional string taskId
  3: optional bazel.ExecuteRequest bazelRequest
}

struct JobDefinition {
  1: optional string jobType
  2: optional list<TaskDefinition> tasks
  3: optional i32 priority
  4: optional string tag
  5: optional string basis
  6: optional string requestor
}

struct Job {
  1: required string id
  2: required JobDefinition jobDefinition
}
