// Subset of the Bazel remote-execution messages that Scoot carries on the wire.
// Bazel execution itself is out of scope for Scoot-py; these types only keep the IDL compatible.
namespace py bazel

struct Digest {
  1: optional string hash
  2: optional i64 sizeBytes
}

struct Timestamp {
  1: optional i64 seconds
  2: optional i32 nanos
}

struct ExecutedActionMetadata {
  1: optional string worker
  2: optional Timestamp queuedTimestamp
  3: optional Timestamp workerStartTimestamp
  4: optional Timestamp workerCompletedTimestamp
  5: optional Timestamp inputFetchStartTimestamp
  6: optional Timestamp inputFetchCompletedTimestamp
  7: optional Timestamp executionStartTimestamp
  8: optional Timestamp executionCompletedTimestamp
  9: optional Timestamp outputUploadStartTimestamp
  10: optional Timestamp outputUploadCompletedTimestamp
}

struct ExecutionPolicy {
  1: optional i32 priority
}

struct ResultsCachePolicy {
  1: optional i32 priority
}

struct ExecuteRequest {
  1: optional string instanceName
  2: optional bool skipCache
  3: optional Digest actionDigest
  4: optional ExecutionPolicy executionPolicy
  5: optional ResultsCachePolicy resultsCachePolicy
  6: optional ExecutedActionMetadata executionMetadata
}

struct OutputFile {
  1: optional string path
  2: optional Digest digest
  3: optional bool isExecutable
}

struct OutputDirectory {
  1: optional string path
  2: optional Digest treeDigest
}

struct ActionResult {
  1: optional list<OutputFile> outputFiles
  2: optional list<OutputDirectory> outputDirectories
  3: optional i32 exitCode
  4: optional binary stdoutRaw
  5: optional Digest stdoutDigest
  6: optional binary stderrRaw
  7: optional Digest stderrDigest
  8: optional ExecutedActionMetadata executionMetadata
  9: optional Digest actionDigest
  10: optional binary GRPCStatus
  11: optional bool cached
}
