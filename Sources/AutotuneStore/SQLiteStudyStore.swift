public import Autotune
public import Foundation
import GRDB

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The SQLite ``StudyStore``: one `DatabasePool` per file, in WAL mode, so readers (`autotune status`)
/// never block the runner's writes.
///
/// Every method is one transaction. The runner is the single writer of a study; other processes read. Rows are
/// the core's ``TrialRecord`` and ``StudyRecord``, read and written as GRDB records.
public final class SQLiteStudyStore: StudyStore {
    /// How a file is opened.
    public enum Mode: Sendable, Hashable {
        /// Create the file (and its directories) when missing; migrate it: for starting studies.
        case create
        /// The file must exist and hold a database; migrate it: for resuming studies.
        case existing
        /// The file must exist; read it without writing anything (a read-only file or directory is fine): for
        /// `status`, `best`, `trials`.
        case readOnly
    }

    /// The database.
    let database: any DatabaseWriter
    /// The file's path.
    public let location: String
    /// The file as opened (device and inode), to notice it being removed or replaced while a study runs.
    private let identity: FileIdentity?

    /// How long a write waits for another process's lock on the file before it fails.
    public static let defaultBusyTimeout: TimeInterval = 60

    /// Opens the store at `path` as `mode` says, and checks the file (`PRAGMA quick_check`).
    ///
    /// Two processes opening a new file at once do not race on its schema: migrations run under an exclusive
    /// lock on the file's directory. A write waits up to `busyTimeout` seconds for a lock another process holds
    /// (a second study in the file, or someone's `sqlite3` in a transaction), then fails with ``AutotuneError``
    /// saying so; nothing recorded before is lost.
    public init(path: String, mode: Mode = .create, busyTimeout: TimeInterval = defaultBusyTimeout) throws {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        let path = url.path
        location = path
        var configuration = Configuration()
        // Another autotune process may hold the write lock for a moment (a second study in the same file):
        // wait for it instead of failing.
        configuration.busyMode = .timeout(busyTimeout)
        configuration.foreignKeysEnabled = true
        let files = FileManager.default
        if mode != .create {
            guard files.fileExists(atPath: path) else {
                throw AutotuneError(
                    .studyNotFound,
                    "there is no database at \(path) (give the one the study was run with: --db FILE)")
            }
            func size(_ file: String) -> Int {
                (try? files.attributesOfItem(atPath: file)[.size] as? NSNumber)?.intValue ?? 0
            }
            // SQLite creates the file before it writes a byte: a run stopped in that moment leaves it empty.
            // Nothing was recorded, so it is a database with no study yet, not a damaged one. (What a WAL
            // database wrote may still be only in its `-wal` file: then SQLite is left to read it.)
            if size(path) == 0 && size(path + "-wal") == 0 {
                throw AutotuneError(
                    .studyNotFound,
                    "\(path) is empty (0 bytes): it holds no study yet (a run stopped before writing one, or the file was truncated)"
                )
            }
        }
        if mode == .readOnly {
            configuration.readonly = true
            database = try Self.translatingErrors(path) { try Self.openReadOnly(path, configuration: configuration) }
            try Self.checkIsStudyDatabase(database, location: path, mustHoldStudies: true)
        } else {
            try files.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            database = try Self.translatingErrors(path) {
                try Self.withDirectoryLock(url.deletingLastPathComponent()) {
                    let pool = try DatabasePool(path: path, configuration: configuration)
                    // Another program's database is not migrated into one of ours.
                    try Self.checkIsStudyDatabase(pool, location: path)
                    try Self.migrator.migrate(pool)
                    return pool
                }
            }
        }
        try Self.check(database, location: path)
        identity = FileIdentity(path: path)
    }

    /// Closes the database. The last connection to close folds the write-ahead log back into the file and removes
    /// it, so the `.sqlite` file alone holds the studies (copied, mailed, opened by another tool); a process that
    /// exits without closing would leave the log beside it, and the file alone would look empty or stale.
    /// Nothing can be read or written afterwards.
    public func close() {
        if let pool = database as? DatabasePool {
            // Another process may still have the file open: then SQLite keeps the log, and truncating it to
            // zero here makes what stays small, whatever the other process does.
            _ = try? pool.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
            try? pool.close()
        } else if let queue = database as? DatabaseQueue {
            try? queue.close()
        }
    }

    /// A store in memory, for tests: it lives as long as the value.
    public static func inMemory() throws -> SQLiteStudyStore {
        try SQLiteStudyStore(database: DatabaseQueue())
    }

    private init(database: any DatabaseWriter) throws {
        self.database = database
        location = "memory:\(UUID().uuidString)"
        identity = nil
        try Self.migrator.migrate(database)
    }

    /// A read-only connection to `path`. A WAL database whose `-shm` file is gone (nobody has it open) and whose
    /// directory cannot be written cannot be opened in place, since SQLite must create that file: then a copy is
    /// read, which is exact because no writer has the file open.
    private static func openReadOnly(_ path: String, configuration: GRDB.Configuration) throws -> DatabaseQueue {
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            _ = try queue.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") }
            return queue
        } catch let error as DatabaseError
            where [.SQLITE_READONLY, .SQLITE_CANTOPEN].contains(error.resultCode)
            && !FileManager.default.isWritableFile(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path)
        {
            let copy = FileManager.default.temporaryDirectory.appendingPathComponent(
                "autotune-read-\(UUID().uuidString).sqlite")
            try FileManager.default.copyItem(atPath: path, toPath: copy.path)
            defer { try? FileManager.default.removeItem(at: copy) }
            // The copy is read into memory and removed at once: nothing is left behind.
            let queue = try DatabaseQueue(path: copy.path, configuration: configuration)
            let memory = try DatabaseQueue()
            try queue.backup(to: memory)
            return memory
        }
    }

    /// Runs `body` holding an exclusive `flock` on `directory`, so processes creating or migrating databases
    /// there take turns. The directory, not the file: closing any descriptor of the database file would drop
    /// SQLite's own locks on it in this process.
    private static func withDirectoryLock<T>(_ directory: URL, _ body: () throws -> T) throws -> T {
        let descriptor = open(directory.path, O_RDONLY)
        guard descriptor >= 0 else { return try body() }
        defer {
            #if canImport(Glibc)
                Glibc.close(descriptor)
            #else
                Darwin.close(descriptor)
            #endif
        }
        while flock(descriptor, LOCK_EX) != 0, errno == EINTR {}
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }

    /// Runs `open`, saying in words which file could not be opened and why.
    private static func translatingErrors<T>(_ location: String, _ open: () throws -> T) throws -> T {
        do {
            return try open()
        } catch let error as DatabaseError {
            switch error.resultCode {
            case .SQLITE_NOTADB, .SQLITE_CORRUPT:
                throw AutotuneError(
                    .corrupt, "\(location) is not a readable database (\(error.message ?? "\(error)"))",
                    underlying: error)
            case .SQLITE_READONLY, .SQLITE_CANTOPEN, .SQLITE_PERM:
                throw AutotuneError(
                    .unavailable, "cannot open \(location) (\(error.message ?? "\(error)"))", underlying: error)
            default:
                throw AutotuneError(
                    .unavailable, "cannot use \(location) (\(error.message ?? "\(error)"))", underlying: error)
            }
        }
    }

    /// Fails when the file is a SQLite database but not one of Autotune's, naming what it holds: a file copied
    /// without its `-wal` while a study wrote to it holds nothing yet, and another program's tables are not ours
    /// to add to. An empty database (a new file) passes.
    private static func checkIsStudyDatabase(
        _ database: any DatabaseReader, location: String, mustHoldStudies: Bool = false
    ) throws {
        let tables = try translatingErrors(location) {
            try database.read { db in
                try String.fetchAll(
                    db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
            }
        }
        if tables.isEmpty {
            guard mustHoldStudies else { return }
            throw AutotuneError(
                .studyNotFound,
                "\(location) holds no study (a SQLite file with no tables: a copy taken while a study wrote to it needs its -wal file beside it)"
            )
        }
        guard !tables.contains("studies"), !tables.contains("grdb_migrations") else { return }
        let listed = tables.sorted().prefix(6).joined(separator: ", ") + (tables.count > 6 ? ", …" : "")
        throw AutotuneError(
            .unavailable, "\(location) is a SQLite database but not an Autotune one (its tables: \(listed))")
    }

    /// Fails when SQLite finds the file damaged, rather than running on data that may be wrong.
    private static func check(_ database: any DatabaseWriter, location: String) throws {
        let result: [String]
        do {
            result = try database.read { db in try String.fetchAll(db, sql: "PRAGMA quick_check") }
        } catch let error as DatabaseError {
            throw AutotuneError(
                .corrupt,
                "\(location) is damaged (\(error.message ?? "\(error)")); restore a copy or start another --db",
                underlying: error)
        }
        guard result == ["ok"] else {
            let found = result.prefix(3).joined(separator: "; ")
            throw AutotuneError(.corrupt, "\(location) is damaged (\(found)); restore a copy or start another --db")
        }
    }

    /// Runs `body` in a write transaction, saying in words when another process held the file locked too long.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await database.write(body)
        } catch let error as DatabaseError where Self.isLocked(error) {
            throw lockedError(error)
        } catch let error as DatabaseError where Self.isFull(error) {
            throw fullError(error)
        }
    }

    /// ``write(_:)`` without suspending, for writes that must run in a cancelled task.
    func writeNow<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try database.write(body)
        } catch let error as DatabaseError where Self.isLocked(error) {
            throw lockedError(error)
        } catch let error as DatabaseError where Self.isFull(error) {
            throw fullError(error)
        }
    }

    /// Whether SQLite could not write because the disk is full (SQLITE_FULL, or an I/O error whose cause was no
    /// space left).
    private static func isFull(_ error: DatabaseError) -> Bool {
        error.resultCode == .SQLITE_FULL
            || (error.resultCode == .SQLITE_IOERR && (error.message ?? "").localizedCaseInsensitiveContains("space"))
    }

    private func fullError(_ error: DatabaseError) -> AutotuneError {
        AutotuneError(
            .diskFull,
            "the disk holding the database \(location) is full: the write of the latest result failed (SQLite: \(error.message ?? "database or disk is full")); what was recorded before is kept: free some space and `autotune resume`",
            underlying: error
        )
    }

    private static func isLocked(_ error: DatabaseError) -> Bool {
        error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED
    }

    private func lockedError(_ error: DatabaseError) -> AutotuneError {
        AutotuneError(
            .lockTimeout,
            "\(location) stayed locked by another process past the wait for it (SQLite: \(error.message ?? "database is locked")); what was recorded before is kept: `autotune resume` goes on once the lock is released",
            underlying: error
        )
    }

    /// Fails when the file this store opened is gone or was replaced: writes would land in a file nobody can
    /// open again, and the study would report results it no longer has.
    private func checkFile() throws {
        guard let identity, FileIdentity(path: location) != identity else { return }
        throw AutotuneError(
            .unavailable,
            "the database \(location) was removed or replaced while the study ran; stop, and restore it or start over")
    }

    /// Creates a study; fails with ``AutotuneError`` if the name is taken.
    public func createStudy(_ definition: StudyDefinition, taskSource: String?) async throws -> StoredStudy {
        let definitionJSON = try TrialRecord.json(definition)
        let now = Date()
        return try await write { db in
            if try StudyRow.filter(StudyRow.Columns.name == definition.name).fetchCount(db) > 0 {
                throw AutotuneError.studyExists(definition.name)
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
            try StudyRow.fetchOne(db, sql: Self.studySelect + " WHERE s.name = ?", arguments: [name])?.record.study()
        }
    }

    /// Every study, oldest first.
    public func studies() async throws -> [StoredStudy] {
        try await database.read { db in
            try StudyRow.fetchAll(db, sql: Self.studySelect + " ORDER BY s.id").map { try $0.record.study() }
        }
    }

    /// The study's trials in number order.
    public func trials(ofStudy studyID: Int64) async throws -> [Trial] {
        try await database.read { db in
            try TrialRow.of(study: studyID).fetchAll(db).map { try $0.record.trial() }
        }
    }

    /// Inserts new trials or updates re-queued ones, with the checkpoint, in one transaction.
    public func saveLaunched(_ trials: [Trial], studyID: Int64, checkpoint: Data?) async throws {
        try checkFile()
        let rows = try trials.map { try TrialRow($0, studyID: studyID) }
        try await write { db in
            for row in rows { try row.upsert(db) }
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
        try checkFile()
        let row = try TrialRow(trial, studyID: studyID)
        try await write { db in
            try row.upsert(db)
            if let checkpoint { try Self.saveCheckpoint(checkpoint, studyID: studyID, db: db) }
            _ = try StudyRow.row(studyID).updateAll(
                db,
                StudyRow.Columns.bestNumber.set(to: best?.number),
                StudyRow.Columns.bestScore.set(to: best?.score),
                StudyRow.Columns.bestFront.set(to: StudyRecord.frontColumn(best)),
                StudyRow.Columns.elapsedSeconds.set(to: elapsedSeconds),
                StudyRow.Columns.updatedAt.set(to: Date())
            )
        }
    }

    /// Puts trials back to pending.
    public func saveRequeued(_ trials: [Trial], studyID: Int64) async throws {
        try checkFile()
        let rows = try trials.map { try TrialRow($0, studyID: studyID) }
        try await write { db in
            for row in rows { try row.upsert(db) }
        }
    }

    /// Stamps the running trials and the study with the current time.
    public func saveHeartbeat(studyID: Int64, elapsedSeconds: Double) async throws {
        try checkFile()
        let now = Date()
        try await write { db in
            try db.execute(
                sql: "UPDATE trials SET heartbeat_at = ? WHERE study_id = ? AND state = 'running'",
                arguments: [now, studyID]
            )
            _ = try StudyRow.row(studyID).updateAll(
                db,
                StudyRow.Columns.updatedAt.set(to: now),
                StudyRow.Columns.elapsedSeconds.set(to: elapsedSeconds)
            )
        }
    }

    /// Deletes the study; its trials and checkpoint go with it (foreign keys cascade).
    public func deleteStudy(_ studyID: Int64) async throws {
        try checkFile()
        try await write { db in _ = try StudyRow.row(studyID).deleteAll(db) }
    }

    /// Records the study's status, runner and running time.
    /// Replaces the study's definition and task file text.
    public func saveDefinition(_ definition: StudyDefinition, taskSource: String?, studyID: Int64) async throws {
        try checkFile()
        let json = try TrialRecord.json(definition)
        try await write { db in
            try db.execute(
                sql: "UPDATE studies SET definition = ?, task_source = ?, updated_at = ? WHERE id = ?",
                arguments: [json, taskSource, Date(), studyID])
        }
    }

    public func saveStatus(
        _ status: StudyStatus,
        studyID: Int64,
        runner: RunnerIdentity?,
        elapsedSeconds: Double
    ) async throws {
        try checkFile()
        try await write { db in
            _ = try StudyRow.row(studyID).updateAll(
                db,
                StudyRow.Columns.status.set(to: status.rawValue),
                StudyRow.Columns.runnerHost.set(to: runner?.host),
                StudyRow.Columns.runnerPID.set(to: runner.map { Int($0.pid) }),
                StudyRow.Columns.runnerStarted.set(to: runner?.started),
                StudyRow.Columns.elapsedSeconds.set(to: elapsedSeconds),
                StudyRow.Columns.updatedAt.set(to: Date())
            )
        }
    }

    // MARK: - Rows

    /// A study's row with its checkpoint, which lives in a table of its own.
    private static let studySelect = """
        SELECT s.*, c.state AS checkpoint FROM studies s LEFT JOIN strategy_checkpoints c ON c.study_id = s.id
        """

    private static func saveCheckpoint(_ checkpoint: Data, studyID: Int64, db: Database) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO strategy_checkpoints (study_id, state, updated_at) VALUES (?, ?, ?)
                ON CONFLICT (study_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at
                """
        ).execute(arguments: [studyID, checkpoint, Date()])
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
        migrator.registerMigration("v4: the Pareto front of a study of several objectives") { db in
            try db.alter(table: "studies") { t in t.add(column: "best_front", .text) }
        }
        migrator.registerMigration("v5: confirmation runs") { db in
            try db.alter(table: "trials") { t in t.add(column: "confirms", .integer) }
        }
        migrator.registerMigration("v6: when a runner's process started, so a reused pid is not taken for it") { db in
            try db.alter(table: "studies") { t in t.add(column: "runner_started", .text) }
            try db.alter(table: "resource_leases") { t in t.add(column: "started", .text) }
        }
        return migrator
    }
}

/// A trial's row in the `trials` table: the core's ``TrialRecord``, read and written as a GRDB record.
///
/// A wrapper rather than a conformance of the core type, so GRDB stays out of the store's public API.
struct TrialRow: Decodable, FetchableRecord, TableRecord {
    static let databaseTableName = "trials"

    enum Columns {
        static let studyID = Column(TrialRecord.CodingKeys.studyID)
        static let number = Column(TrialRecord.CodingKeys.number)
    }

    var record: TrialRecord

    init(_ trial: Trial, studyID: Int64) throws { record = try TrialRecord(trial, studyID: studyID) }

    init(from decoder: any Decoder) throws { record = try TrialRecord(from: decoder) }

    /// Inserts the row, or replaces the study's trial of the same number (its heartbeat stays), through one
    /// cached statement: two writes per trial are the loop's hot path, and a record's generic upsert builds its
    /// SQL and column dictionary every time.
    func upsert(_ db: Database) throws {
        let statement = try db.cachedStatement(sql: Self.upsertSQL)
        try statement.execute(arguments: StatementArguments(TrialRecord.CodingKeys.allCases.map(value(of:))))
    }

    /// The column `key`'s value, in the order of `CodingKeys.allCases`, which the statement's columns follow.
    private func value(of key: TrialRecord.CodingKeys) -> (any DatabaseValueConvertible)? {
        switch key {
        case .studyID: record.studyID
        case .number: record.number
        case .state: record.state
        case .params: record.params
        case .metrics: record.metrics
        case .score: record.score
        case .errorStage: record.errorStage
        case .errorMessage: record.errorMessage
        case .timings: record.timings
        case .attempt: record.attempt
        case .startedAt: record.startedAt
        case .finishedAt: record.finishedAt
        case .gpus: record.gpus
        case .port: record.port
        case .host: record.host
        case .confirms: record.confirms
        }
    }

    private static let upsertSQL: String = {
        let columns = TrialRecord.CodingKeys.allCases.map(\.rawValue)
        let updates = columns.filter { $0 != "study_id" && $0 != "number" }.map { "\($0) = excluded.\($0)" }
        return """
            INSERT INTO trials (\(columns.joined(separator: ", "))) VALUES (\(columns.map { _ in "?" }.joined(separator: ", ")))
            ON CONFLICT (study_id, number) DO UPDATE SET \(updates.joined(separator: ", "))
            """
    }()

    /// The trials of a study in number order.
    static func of(study studyID: Int64) -> QueryInterfaceRequest<Self> {
        filter(Columns.studyID == studyID).order(Columns.number)
    }
}

/// A study's row in the `studies` table, read with its checkpoint (a table of its own) as a ``StudyRecord``.
struct StudyRow: Decodable, FetchableRecord, TableRecord {
    static let databaseTableName = "studies"

    enum Columns {
        static let id = Column(StudyRecord.CodingKeys.id)
        static let name = Column(StudyRecord.CodingKeys.name)
        static let status = Column(StudyRecord.CodingKeys.status)
        static let bestNumber = Column(StudyRecord.CodingKeys.bestNumber)
        static let bestScore = Column(StudyRecord.CodingKeys.bestScore)
        static let bestFront = Column(StudyRecord.CodingKeys.bestFront)
        static let elapsedSeconds = Column(StudyRecord.CodingKeys.elapsedSeconds)
        static let runnerHost = Column(StudyRecord.CodingKeys.runnerHost)
        static let runnerPID = Column(StudyRecord.CodingKeys.runnerPID)
        static let runnerStarted = Column(StudyRecord.CodingKeys.runnerStarted)
        static let updatedAt = Column(StudyRecord.CodingKeys.updatedAt)
    }

    var record: StudyRecord

    init(from decoder: any Decoder) throws { record = try StudyRecord(from: decoder) }

    /// The study's row, `studyID`.
    static func row(_ studyID: Int64) -> QueryInterfaceRequest<Self> { filter(Columns.id == studyID) }
}

/// A file's device and inode: the same while the file is the one opened, different once it was replaced.
private struct FileIdentity: Hashable {
    let device: UInt64
    let inode: UInt64

    /// The identity of the file at `path`, or `nil` when there is none.
    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }
}
