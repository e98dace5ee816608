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
                    + "parameters, objective, strategy, seed and baseline (start a new study with --study NAME instead):\n  "
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
