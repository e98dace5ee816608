public import Autotune
import Foundation

/// `resume STUDY --task FILE`: going on with a changed task file, when the change keeps what the study recorded
/// valid (``StudyDefinition/changes(to:)``).
public enum StudyAmendment {
    /// The study with the definition of the task file at `path` saved in its place; the name stays the study's.
    /// ``AutotuneError/Code/invalidTask`` listing each field that may not change, with what it was and would be.
    public static func apply(
        _ path: String, to study: StoredStudy, in store: any StudyStore, checkPrograms: Bool = true
    ) async throws -> StoredStudy {
        var task = try LoadedTask.load(path, checkPrograms: checkPrograms)
        task.definition.name = study.definition.name
        let changes = study.definition.changes(to: task.definition)
        guard changes.refused.isEmpty else {
            throw AutotuneError(
                .invalidTask,
                "\(path) changes what study '\(study.definition.name)' has recorded trials of; it can only go on with the same "
                    + "parameters, objective, strategy, seed, baseline and workload (start a new study with --study NAME instead):\n  "
                    + changes.refused.joined(separator: "\n  "))
        }
        guard !changes.isEmpty else { return study }
        try await store.saveDefinition(task.definition, taskSource: task.source, studyID: study.id)
        var amended = study
        amended.definition = task.definition
        amended.taskSource = task.source
        // A study completed under its old budget goes on under the new one.
        if amended.status == .completed { amended.status = .interrupted }
        FileHandle.standardError.write(
            Data(
                "autotune: study '\(study.definition.name)' goes on with \(path): changed \(changes.allowed.joined(separator: ", "))\n"
                    .utf8))
        return amended
    }
}

extension StudyDefinition {
    /// Fails when a workload file the study reads (a dataset, a trace) is gone or changed since the study
    /// started: its trials so far were measured on the requests the file gave then.
    public func checkWorkloadFiles() throws {
        guard case .serving(let serving) = experiment, case .load(let load) = serving.benchmark,
            let workload = load.workload
        else { return }
        guard let file = workload.file else { return }
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw AutotuneError(
                .invalidTask, "study '\(name)' reads \(file.path), which is gone: restore it to go on with the study")
        }
        guard WorkloadFiles.fingerprint(data) == file.fingerprint else {
            throw AutotuneError(
                .invalidTask,
                "study '\(name)' reads \(file.path), which changed since the study started: its trials would not be measured on the same requests; restore the file, or start a new study (--study NAME)"
            )
        }
    }
}
