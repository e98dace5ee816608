public import Autotune
public import Foundation
public import GRDB

/// The SQLite ``StudyStore``: one `DatabasePool` per file, in WAL mode, so readers (`autotune status`)
/// never block the runner's writes.
///
/// Every method is one transaction. The runner is the single writer of a study; other processes read.
public final class SQLiteStudyStore: StudyStore {
    /// The database, exposed for tools and tests that query it directly.
    public let database: any DatabaseWriter

    /// Opens (and creates or migrates) the store at `path`.
    public init(path: String) throws {
        var configuration = Configuration()
        // Another autotune process may hold the write lock for a moment (a second study in the same file):
        // wait for it instead of failing.
        configuration.busyMode = .timeout(10)
        configuration.foreignKeysEnabled = true
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        database = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(database)
    }

    /// Wraps an existing database (an in-memory `DatabaseQueue` for unit tests) and migrates it.
    public init(database: any DatabaseWriter) throws {
        self.database = database
        try Self.migrator.migrate(database)
    }

    /// Creates a study; fails with ``StoreError`` if the name is taken.
    public func createStudy(_ definition: StudyDefinition, taskSource: String?) async throws -> StoredStudy {
        let definitionJSON = try Self.encode(definition)
        let now = Date()
        return try await database.write { db in
            if try Int.fetchOne(db, sql: "SELECT 1 FROM studies WHERE name = ?", arguments: [definition.name]) != nil {
                throw StoreError.studyExists(definition.name)
            }
            try db.execute(
                sql: """
                    INSERT INTO studies (name, definition, task_source, status, elapsed_seconds, created_at, updated_at)
                    VALUES (?, ?, ?, ?, 0, ?, ?)
                    """,
                arguments: [definition.name, definitionJSON, taskSource, StudyStatus.running.rawValue, now, now]
            )
            return StoredStudy(
                id: db.lastInsertedRowID,
                definition: definition,
                taskSource: taskSource,
                status: .running,
                checkpoint: nil,
                best: nil,
                elapsedSeconds: 0,
                runner: nil,
                createdAt: now
            )
        }
    }

    /// The study called `name`, or `nil`.
    public func study(named name: String) async throws -> StoredStudy? {
        try await database.read { db in
            try Row.fetchOne(db, sql: Self.studySelect + " WHERE s.name = ?", arguments: [name]).map(Self.study(from:))
        }
    }

    /// Every study, oldest first.
    public func studies() async throws -> [StoredStudy] {
        try await database.read { db in
            try Row.fetchAll(db, sql: Self.studySelect + " ORDER BY s.id").map(Self.study(from:))
        }
    }

    /// The study's trials in number order.
    public func trials(ofStudy studyID: Int64) async throws -> [Trial] {
        try await database.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM trials WHERE study_id = ? ORDER BY number",
                arguments: [studyID]
            ).map(Self.trial(from:))
        }
    }

    /// Inserts new trials or updates re-queued ones, with the checkpoint, in one transaction.
    public func saveLaunched(_ trials: [Trial], studyID: Int64, checkpoint: Data?) async throws {
        let rows = try trials.map { try Self.arguments(for: $0, studyID: studyID) }
        try await database.write { db in
            for arguments in rows { try Self.upsert(arguments, db: db) }
            if let checkpoint { try Self.saveCheckpoint(checkpoint, studyID: studyID, db: db) }
        }
    }

    /// Saves a finished trial, the checkpoint that knows it and the study's best, in one transaction.
    public func saveFinished(
        _ trial: Trial,
        studyID: Int64,
        checkpoint: Data?,
        best: BestTrial?,
        elapsedSeconds: Double
    ) async throws {
        let arguments = try Self.arguments(for: trial, studyID: studyID)
        try await database.write { db in
            try Self.upsert(arguments, db: db)
            if let checkpoint { try Self.saveCheckpoint(checkpoint, studyID: studyID, db: db) }
            try db.execute(
                sql: """
                    UPDATE studies SET best_number = ?, best_score = ?, elapsed_seconds = ?, updated_at = ? WHERE id = ?
                    """,
                arguments: [best?.number, best?.score, elapsedSeconds, Date(), studyID]
            )
        }
    }

    /// Puts trials back to pending.
    public func saveRequeued(_ trials: [Trial], studyID: Int64) async throws {
        let rows = try trials.map { try Self.arguments(for: $0, studyID: studyID) }
        try await database.write { db in
            for arguments in rows { try Self.upsert(arguments, db: db) }
        }
    }

    /// Stamps the running trials and the study with the current time.
    public func saveHeartbeat(studyID: Int64, elapsedSeconds: Double) async throws {
        let now = Date()
        try await database.write { db in
            try db.execute(
                sql: "UPDATE trials SET heartbeat_at = ? WHERE study_id = ? AND state = 'running'",
                arguments: [now, studyID]
            )
            try db.execute(
                sql: "UPDATE studies SET updated_at = ?, elapsed_seconds = ? WHERE id = ?",
                arguments: [now, elapsedSeconds, studyID]
            )
        }
    }

    /// Records the study's status, runner and running time.
    public func saveStatus(
        _ status: StudyStatus,
        studyID: Int64,
        runner: RunnerIdentity?,
        elapsedSeconds: Double
    ) async throws {
        try await database.write { db in
            try db.execute(
                sql: """
                    UPDATE studies SET status = ?, runner_host = ?, runner_pid = ?, elapsed_seconds = ?, updated_at = ?
                    WHERE id = ?
                    """,
                arguments: [status.rawValue, runner?.host, runner?.pid, elapsedSeconds, Date(), studyID]
            )
        }
    }

    // MARK: - Rows

    private static let studySelect = """
        SELECT s.*, c.state AS checkpoint FROM studies s LEFT JOIN strategy_checkpoints c ON c.study_id = s.id
        """

    private static func study(from row: Row) throws -> StoredStudy {
        let name: String = row["name"]
        let definition: StudyDefinition
        do {
            definition = try JSONDecoder().decode(StudyDefinition.self, from: Data((row["definition"] as String).utf8))
        } catch {
            throw StoreError.corrupt("study '\(name)': its definition cannot be read (\(error))")
        }
        let bestNumber: Int? = row["best_number"]
        let bestScore: Double? = row["best_score"]
        let host: String? = row["runner_host"]
        let pid: Int32? = row["runner_pid"]
        let statusText: String = row["status"]
        guard let status = StudyStatus(rawValue: statusText) else {
            throw StoreError.corrupt("study '\(name)': unknown status '\(statusText)'")
        }
        return StoredStudy(
            id: row["id"],
            definition: definition,
            taskSource: row["task_source"],
            status: status,
            checkpoint: row["checkpoint"],
            best: bestNumber.flatMap { number in bestScore.map { BestTrial(number: number, score: $0) } },
            elapsedSeconds: row["elapsed_seconds"],
            runner: host.flatMap { host in pid.map { RunnerIdentity(host: host, pid: $0) } },
            createdAt: row["created_at"],
            updatedAt: row["updated_at"]
        )
    }

    private static func trial(from row: Row) throws -> Trial {
        let number: Int = row["number"]
        do {
            let decoder = JSONDecoder()
            let configuration = try decoder.decode(Configuration.self, from: Data((row["params"] as String).utf8))
            var trial = Trial(number: number, configuration: configuration)
            let stateText: String = row["state"]
            guard let state = TrialState(rawValue: stateText) else {
                throw StoreError.corrupt("trial \(number): unknown state '\(stateText)'")
            }
            trial.state = state
            trial.metrics = try decoder.decode([String: Double].self, from: Data((row["metrics"] as String).utf8))
            trial.timings = try decoder.decode([String: Double].self, from: Data((row["timings"] as String).utf8))
            trial.score = row["score"]
            if let stage: String = row["error_stage"] {
                trial.error = TrialError(stage: TrialStage(rawValue: stage), message: row["error_message"] ?? "")
            }
            trial.attempt = row["attempt"]
            trial.startedAt = row["started_at"]
            trial.finishedAt = row["finished_at"]
            if let gpus: String = row["gpus"] { trial.gpus = try decoder.decode([Int].self, from: Data(gpus.utf8)) }
            trial.port = row["port"]
            trial.host = row["host"]
            return trial
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError.corrupt("trial \(number): a JSON column cannot be read (\(error))")
        }
    }

    private static func arguments(for trial: Trial, studyID: Int64) throws -> StatementArguments {
        [
            studyID, trial.number, trial.state.rawValue, try encode(trial.configuration), try encode(trial.metrics),
            trial.score, trial.error?.stage.rawValue, trial.error?.message, try encode(trial.timings), trial.attempt,
            trial.startedAt, trial.finishedAt, try trial.gpus.map { try encode($0) }, trial.port, trial.host,
        ]
    }

    private static func upsert(_ arguments: StatementArguments, db: Database) throws {
        let statement = try db.cachedStatement(
            sql: """
                INSERT INTO trials (study_id, number, state, params, metrics, score, error_stage, error_message,
                                    timings, attempt, started_at, finished_at, gpus, port, host)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (study_id, number) DO UPDATE SET
                    state = excluded.state, params = excluded.params, metrics = excluded.metrics,
                    score = excluded.score, error_stage = excluded.error_stage,
                    error_message = excluded.error_message, timings = excluded.timings,
                    attempt = excluded.attempt, started_at = excluded.started_at, finished_at = excluded.finished_at,
                    gpus = excluded.gpus, port = excluded.port, host = excluded.host
                """
        )
        try statement.execute(arguments: arguments)
    }

    private static func saveCheckpoint(_ checkpoint: Data, studyID: Int64, db: Database) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO strategy_checkpoints (study_id, state, updated_at) VALUES (?, ?, ?)
                ON CONFLICT (study_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at
                """
        ).execute(arguments: [studyID, checkpoint, Date()])
    }

    private static func encode(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    // MARK: - Schema

    /// The versioned schema. A migration, once released, is never edited: add a new one.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: studies, trials, checkpoints") { db in
            try db.create(table: "studies") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("name", .text).notNull().unique()
                t.column("definition", .text).notNull()
                t.column("task_source", .text)
                t.column("status", .text).notNull()
                t.column("best_number", .integer)
                t.column("best_score", .double)
                t.column("elapsed_seconds", .double).notNull().defaults(to: 0)
                t.column("runner_host", .text)
                t.column("runner_pid", .integer)
                t.column("created_at", .datetime).notNull()
                t.column("updated_at", .datetime).notNull()
            }
            try db.create(table: "trials") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("study_id", .integer).notNull().references("studies", onDelete: .cascade)
                t.column("number", .integer).notNull()
                t.column("state", .text).notNull()
                t.column("params", .text).notNull()
                t.column("metrics", .text).notNull().defaults(to: "{}")
                t.column("score", .double)
                t.column("error_stage", .text)
                t.column("error_message", .text)
                t.column("timings", .text).notNull().defaults(to: "{}")
                t.column("attempt", .integer).notNull().defaults(to: 0)
                t.column("started_at", .datetime)
                t.column("finished_at", .datetime)
                t.column("heartbeat_at", .datetime)
                t.uniqueKey(["study_id", "number"])
            }
            try db.create(index: "trials_by_state", on: "trials", columns: ["study_id", "state"])
            try db.create(table: "strategy_checkpoints") { t in
                t.primaryKey("study_id", .integer).references("studies", onDelete: .cascade)
                t.column("state", .blob).notNull()
                t.column("updated_at", .datetime).notNull()
            }
        }
        migrator.registerMigration("v2: resource leases") { db in
            try db.alter(table: "trials") { t in
                t.add(column: "gpus", .text)
                t.add(column: "port", .integer)
            }
            try db.create(table: "resource_leases") { t in
                t.column("host", .text).notNull()
                t.column("kind", .text).notNull()
                t.column("resource_id", .integer).notNull()
                t.column("pid", .integer).notNull()
                t.column("study", .text).notNull()
                t.column("trial", .integer).notNull()
                t.column("acquired_at", .datetime).notNull()
                t.primaryKey(["host", "kind", "resource_id"])
            }
        }
        migrator.registerMigration("v3: the node a trial ran on") { db in
            try db.alter(table: "trials") { t in t.add(column: "host", .text) }
        }
        return migrator
    }
}
