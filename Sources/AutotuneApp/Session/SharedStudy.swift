public import Autotune

/// Joining a study that workers share.
public enum SharedStudy {
    /// The study `task` defines in `store`: created by the first worker, joined by the others when their task
    /// defines the same study; ``AutotuneError/Code/invalidTask`` when a study of that name exists with another
    /// definition.
    public static func join(_ task: LoadedTask, in store: any StudyStore, taskPath: String) async throws
        -> StoredStudy
    {
        let definition = task.definition
        do {
            return try await store.createStudy(definition, taskSource: task.source)
        } catch let error as AutotuneError where error.code == .studyExists {
            guard let existing = try await store.study(named: definition.name) else {
                throw AutotuneError(.studyNotFound, "study '\(definition.name)' vanished while joining it")
            }
            // Where trials run is each worker's to say (its flags), or the study's when the first run said it: not a
            // difference between the task files.
            var stored = existing.definition
            var given = definition
            stored.execution = nil
            given.execution = nil
            guard stored == given else {
                throw AutotuneError(
                    .invalidTask,
                    "study '\(definition.name)' exists with a different definition than \(taskPath); join it by name (autotune worker \(definition.name)) or choose another with --study"
                )
            }
            return existing
        }
    }
}
