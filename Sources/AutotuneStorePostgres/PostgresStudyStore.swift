public import Autotune
public import Foundation
public import Logging
import PostgresNIO

/// The PostgreSQL ``StudyStore``, for studies that `autotune worker` processes on several machines share.
///
/// Every method is one transaction. Trials are claimed with `SELECT … FOR UPDATE SKIP LOCKED`; the strategy's
/// ask and tell run while the study's row is locked (`SELECT … FOR UPDATE`), so one worker at a time reads and
/// writes the checkpoint. Timestamps that decide whether a worker is alive come from the database's clock.
///
/// Tables are prefixed `autotune_` so the store can live in a database that holds other things.
public final class PostgresStudyStore: SharedStudyStore {
    private let client: PostgresClient
    let logger: Logger
    /// Where it connects, without the password, for messages.
    public let location: String

    private init(_ parsed: PostgresURL, logger: Logger) {
        location = parsed.redacted
        self.logger = logger
        var configuration: PostgresClient.Configuration
        if let socket = parsed.socketDirectory {
            configuration = PostgresClient.Configuration(
                unixSocketPath: socket + "/.s.PGSQL.\(parsed.port)",
                username: parsed.user,
                password: parsed.password,
                database: parsed.database
            )
        } else {
            configuration = PostgresClient.Configuration(
                host: parsed.host,
                port: parsed.port,
                username: parsed.user,
                password: parsed.password,
                database: parsed.database,
                tls: parsed.tls
            )
        }
        configuration.options.maximumConnections = 8
        // The pool's own chatter (a lease asked for before `run()` is scheduled, connections closed at exit) is
        // not the user's business; its errors are, and they reach the caller as thrown errors too.
        var background = logger
        background.logLevel = .error
        client = PostgresClient(configuration: configuration, backgroundLogger: background)
    }

    /// Connects to `url` (`postgres://user[:password]@host[:port]/database`, `?sslmode=disable|prefer|require`,
    /// or `?host=/path/to/socket/dir` for a Unix socket), creates or migrates the tables, and hands the store to
    /// `body`; the connections close when `body` returns.
    ///
    /// A server that cannot be reached fails after `connectTimeout`: the connection pool would otherwise
    /// retry for as long as a caller waits.
    public static func withStore<Result: Sendable>(
        url: String,
        connectTimeout: Duration = .seconds(10),
        logger: Logger,
        _ body: (PostgresStudyStore) async throws -> Result
    ) async throws -> Result {
        let parsed = try PostgresURL(url)
        let store = PostgresStudyStore(parsed, logger: logger)
        let client = store.client
        return try await withThrowingTaskGroup(of: Void.self) { group in
            // The client's connection pool lives as long as the group: cancelling it closes the connections.
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            do {
                try await withTimeout(connectTimeout) { try await store.migrate() }
            } catch {
                throw AutotuneError(
                    .unavailable, "cannot use PostgreSQL at \(parsed.redacted): \(Self.describe(error))",
                    underlying: error)
            }
            return try await body(store)
        }
    }

    /// Runs `operation`, failing with ``AutotuneError`` when it takes longer than `limit`.
    private static func withTimeout(_ limit: Duration, _ operation: @escaping @Sendable () async throws -> Void)
        async throws
    {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await operation()
                return true
            }
            group.addTask {
                try await Task.sleep(for: limit)
                return false
            }
            defer { group.cancelAll() }
            guard try await group.next() == true else {
                throw AutotuneError(.unavailable, "no answer within \(limit)")
            }
        }
    }

    // MARK: - StudyStore

    /// Creates a study; fails with ``AutotuneError/studyExists(_:)`` if the name is taken, also by a worker
    /// creating it at the same moment.
    public func createStudy(_ definition: StudyDefinition, taskSource: String?) async throws -> StoredStudy {
        let json = try TrialRecord.json(definition)
        let name = definition.name
        let status = StudyStatus.running.rawValue
        let rows = try await run {
            try await client.query(
                """
                INSERT INTO autotune_studies (name, definition, task_source, status, created_at, updated_at)
                VALUES (\(name), \(json), \(taskSource), \(status), now(), now())
                ON CONFLICT (name) DO NOTHING
                RETURNING id, created_at
                """,
                logger: logger
            ).collect()
        }
        guard let row = rows.first?.makeRandomAccess() else { throw AutotuneError.studyExists(name) }
        return StoredStudy(
            id: try row["id"].decode(Int64.self),
            definition: definition,
            taskSource: taskSource,
            status: .running,
            checkpoint: nil,
            best: nil,
            elapsedSeconds: 0,
            runner: nil,
            createdAt: try row["created_at"].decode(Date.self)
        )
    }

    /// The study called `name`, or `nil`.
    public func study(named name: String) async throws -> StoredStudy? {
        let rows = try await run {
            try await client.query("SELECT * FROM autotune_studies WHERE name = \(name)", logger: logger).collect()
        }
        return try rows.first.map(Self.study(from:))
    }

    /// Every study, oldest first.
    public func studies() async throws -> [StoredStudy] {
        let rows = try await run {
            try await client.query("SELECT * FROM autotune_studies ORDER BY id", logger: logger).collect()
        }
        return try rows.map(Self.study(from:))
    }

    /// The study's trials in number order.
    public func trials(ofStudy studyID: Int64) async throws -> [Trial] {
        try await run {
            try await client.withConnection { connection in
                try await Self.trials(studyID: studyID, connection: connection, logger: logger)
            }
        }
    }

    /// Inserts new trials or updates re-queued ones, with the checkpoint, in one transaction.
    public func saveLaunched(_ trials: [Trial], studyID: Int64, checkpoint: Data?) async throws {
        try await transaction { connection in
            for trial in trials {
                try await Self.upsert(trial, studyID: studyID, worker: nil, connection: connection, logger: self.logger)
            }
            if let checkpoint {
                try await Self.saveCheckpoint(checkpoint, studyID: studyID, connection: connection, logger: self.logger)
            }
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
        try await transaction { connection in
            try await self.saveFinished(
                trial, studyID: studyID, checkpoint: checkpoint, best: best, elapsedSeconds: elapsedSeconds,
                connection: connection)
        }
    }

    /// Puts trials back to pending, unclaimed.
    public func saveRequeued(_ trials: [Trial], studyID: Int64) async throws {
        try await transaction { connection in
            for trial in trials {
                try await Self.upsert(trial, studyID: studyID, worker: nil, connection: connection, logger: self.logger)
            }
        }
    }

    /// Stamps the study's running trials and the study with the database's time.
    public func saveHeartbeat(studyID: Int64, elapsedSeconds: Double) async throws {
        try await stamp(studyID: studyID, worker: nil, elapsedSeconds: elapsedSeconds)
    }

    /// Deletes the study; its trials go with it (the foreign key cascades).
    public func deleteStudy(_ studyID: Int64) async throws {
        try await transaction { connection in
            try await connection.rows("DELETE FROM autotune_studies WHERE id = \(studyID)", logger: self.logger)
        }
    }

    /// Records the study's status, runner and running time.
    public func saveStatus(
        _ status: StudyStatus,
        studyID: Int64,
        runner: RunnerIdentity?,
        elapsedSeconds: Double
    ) async throws {
        let statusText = status.rawValue
        let host = runner?.host
        let pid = runner.map { Int($0.pid) }
        let started = runner?.started
        try await transaction { connection in
            try await connection.rows(
                """
                UPDATE autotune_studies SET status = \(statusText), runner_host = \(host), runner_pid = \(pid),
                    runner_started = \(started), elapsed_seconds = GREATEST(elapsed_seconds, \(elapsedSeconds)), updated_at = now()
                WHERE id = \(studyID)
                """,
                logger: self.logger
            )
        }
    }

    /// Replaces the study's definition and task file text.
    public func saveDefinition(_ definition: StudyDefinition, taskSource: String?, studyID: Int64) async throws {
        let json = try TrialRecord.json(definition)
        try await transaction { connection in
            try await connection.rows(
                """
                UPDATE autotune_studies SET definition = \(json), task_source = \(taskSource), updated_at = now()
                WHERE id = \(studyID)
                """,
                logger: self.logger
            )
        }
    }

    // MARK: - SharedStudyStore

    /// Claims the lowest pending trial with `FOR UPDATE SKIP LOCKED`.
    public func claimPending(studyID: Int64, worker: RunnerIdentity) async throws -> Trial? {
        let host = worker.host
        let pid = Int(worker.pid)
        let started = worker.started
        return try await transaction { connection in
            // Cheap when nothing is pending, which is most of the time: no lock, no change number.
            let pending = try await connection.rows(
                "SELECT 1 FROM autotune_trials WHERE study_id = \(studyID) AND state = 'pending' LIMIT 1",
                logger: self.logger)
            guard !pending.isEmpty else { return nil }
            let change = try await Self.nextChange(studyID: studyID, connection: connection, logger: self.logger)
            let rows = try await connection.rows(
                """
                UPDATE autotune_trials SET state = 'running', attempt = attempt + 1, started_at = now(),
                    heartbeat_at = now(), finished_at = NULL, error_stage = NULL, error_message = NULL,
                    worker_host = \(host), worker_pid = \(pid), worker_started = \(started), change = \(change)
                WHERE id = (
                    SELECT id FROM autotune_trials WHERE study_id = \(studyID) AND state = 'pending'
                    ORDER BY number LIMIT 1 FOR UPDATE SKIP LOCKED
                )
                RETURNING *
                """,
                logger: self.logger
            )
            return try rows.first.map(Self.trial(from:))
        }
    }

    /// Runs `decide` while the study's row is locked and saves its trials as claimed by `worker`.
    public func propose(
        studyID: Int64,
        worker: RunnerIdentity,
        since: Int64?,
        _ decide: (SharedStudyState) async throws -> SharedProposal
    ) async throws -> SharedProposal {
        try await transaction { connection in
            let state = try await self.lockedState(studyID: studyID, since: since, connection: connection)
            let proposal = try await decide(state)
            for var trial in proposal.trials {
                trial.state = .running
                try await Self.upsert(
                    trial, studyID: studyID, worker: worker, connection: connection, logger: self.logger)
            }
            if let checkpoint = proposal.checkpoint {
                try await Self.saveCheckpoint(checkpoint, studyID: studyID, connection: connection, logger: self.logger)
            }
            return proposal
        }
    }

    /// Runs `decide` while the study's row is locked and saves the finished trial with its verdict.
    public func finish(
        _ trial: Trial,
        studyID: Int64,
        elapsedSeconds: Double,
        since: Int64?,
        _ decide: (SharedStudyState) async throws -> SharedVerdict
    ) async throws {
        try await transaction { connection in
            let state = try await self.lockedState(studyID: studyID, since: since, connection: connection)
            let verdict = try await decide(state)
            try await self.saveFinished(
                trial, studyID: studyID, checkpoint: verdict.checkpoint, best: verdict.best,
                elapsedSeconds: elapsedSeconds, connection: connection)
        }
    }

    /// Stamps the worker's running trials with the database's time.
    public func heartbeat(studyID: Int64, worker: RunnerIdentity, elapsedSeconds: Double) async throws {
        try await stamp(studyID: studyID, worker: worker, elapsedSeconds: elapsedSeconds)
    }

    /// Stamps the running trials of `worker` (of every worker when `nil`) and the study as alive now, and
    /// raises the study's running time to `elapsedSeconds` if it is behind.
    ///
    /// Two statements, not one transaction: holding trial rows while waiting for the study's row would
    /// deadlock against a tell, which holds the study's row and then writes a trial.
    private func stamp(studyID: Int64, worker: RunnerIdentity?, elapsedSeconds: Double) async throws {
        let host = worker?.host
        let pid = worker.map { Int($0.pid) }
        try await run {
            try await client.withConnection { connection in
                try await connection.rows(
                    """
                    UPDATE autotune_trials SET heartbeat_at = now()
                    WHERE study_id = \(studyID) AND state = 'running'
                        AND (\(host)::text IS NULL OR (worker_host = \(host) AND worker_pid = \(pid)))
                    """,
                    logger: logger
                )
                try await connection.rows(
                    """
                    UPDATE autotune_studies SET updated_at = now(),
                        elapsed_seconds = GREATEST(elapsed_seconds, \(elapsedSeconds))
                    WHERE id = \(studyID)
                    """,
                    logger: logger
                )
            }
        }
    }

    /// Takes back running trials whose heartbeat is older than `age`, claiming them for `worker`.
    public func reclaimStale(
        studyID: Int64,
        olderThan age: Duration,
        worker: RunnerIdentity,
        cleanUp: (ReclaimedTrial) async -> Void
    ) async throws -> [ReclaimedTrial] {
        let seconds = age.seconds
        return try await transaction { connection in
            let study = try await connection.rows(
                "SELECT name FROM autotune_studies WHERE id = \(studyID)", logger: self.logger
            ).first?.makeRandomAccess()["name"].decode(String.self)
            let stale = try await connection.rows(
                """
                SELECT * FROM autotune_trials
                WHERE study_id = \(studyID) AND state = 'running'
                    AND COALESCE(heartbeat_at, started_at) < now() - make_interval(secs => \(seconds))
                ORDER BY number FOR UPDATE SKIP LOCKED
                """,
                logger: self.logger
            )
            var reclaimed: [ReclaimedTrial] = []
            for row in stale {
                let columns = row.makeRandomAccess()
                let previousHost = try columns["worker_host"].decode(String?.self)
                let previousPID = try columns["worker_pid"].decode(Int?.self)
                let previousStarted = try columns["worker_started"].decode(String?.self)
                let trial = try Self.trial(from: row)
                let previous = previousHost.flatMap { host in
                    previousPID.map { RunnerIdentity(host: host, pid: Int32($0), started: previousStarted) }
                }
                // The row stays locked and running until the cleanup is done, so nobody starts it meanwhile.
                await cleanUp(ReclaimedTrial(trial: trial, previousWorker: previous))
                let id = try columns["id"].decode(Int64.self)
                try await connection.rows(
                    """
                    UPDATE autotune_trials SET worker_host = \(worker.host), worker_pid = \(Int(worker.pid)),
                        worker_started = \(worker.started), heartbeat_at = now()
                    WHERE id = \(id)
                    """,
                    logger: self.logger
                )
                let number = trial.number
                try await connection.rows(
                    "DELETE FROM autotune_leases WHERE study = \(study) AND trial = \(number)",
                    logger: self.logger
                )
                reclaimed.append(ReclaimedTrial(trial: trial, previousWorker: previous))
            }
            return reclaimed
        }
    }

    // MARK: - Transactions

    /// Runs `body` in a transaction, mapping connection failures to ``AutotuneError/unavailable(_:)``.
    ///
    /// A transaction PostgreSQL aborts as a deadlock victim or a serialization failure is run again, up to
    /// three times in all: `body` must only depend on what it reads in the transaction.
    @discardableResult
    func transaction<Result: Sendable>(
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        var attempt = 1
        while true {
            do {
                return try await run {
                    try await client.withTransaction(logger: logger) { connection in try await body(connection) }
                }
            } catch let error as TransientFailure where attempt < 3 {
                logger.debug("Retrying a transaction", metadata: ["sqlstate": "\(error.sqlState)"])
                attempt += 1
                try await Task.sleep(for: .milliseconds(10 * attempt))
            }
        }
    }

    /// PostgreSQL aborted the transaction to break a deadlock or keep transactions serializable.
    struct TransientFailure: Error {
        var sqlState: String
        var message: String
    }

    /// Runs `body`, unwrapping PostgresNIO's transaction errors so the caller's own errors come through.
    private func run<Result>(_ body: () async throws -> sending Result) async throws -> sending Result {
        do {
            return try await body()
        } catch let error as PostgresTransactionError {
            if let failure = Self.transientFailure(error.closureError ?? error.commitError) { throw failure }
            if let closureError = error.closureError, !(closureError is PSQLError) { throw closureError }
            throw AutotuneError(.unavailable, "PostgreSQL at \(location): \(Self.describe(error))", underlying: error)
        } catch let error as PSQLError {
            if let failure = Self.transientFailure(error) { throw failure }
            throw AutotuneError(.unavailable, "PostgreSQL at \(location): \(Self.describe(error))", underlying: error)
        }
    }

    /// A deadlock (40P01) or serialization failure (40001), which a new attempt can get past.
    private static func transientFailure(_ error: (any Error)?) -> TransientFailure? {
        guard let error = error as? PSQLError, let state = error.serverInfo?[.sqlState],
            state == "40P01" || state == "40001"
        else { return nil }
        return TransientFailure(sqlState: state, message: describe(error))
    }

    /// The study's row, locked until the transaction ends, with the trials that changed after change `since`
    /// (every trial when `nil`).
    private func lockedState(studyID: Int64, since: Int64?, connection: PostgresConnection) async throws
        -> SharedStudyState
    {
        let rows = try await connection.rows(
            """
            SELECT checkpoint, checkpoint_version, best_number, best_score, best_front, name, change
            FROM autotune_studies WHERE id = \(studyID) FOR UPDATE
            """,
            logger: logger
        )
        guard let row = rows.first?.makeRandomAccess() else {
            throw AutotuneError(.corrupt, "study \(studyID) is gone")
        }
        let bestNumber = try row["best_number"].decode(Int?.self)
        let bestScore = try row["best_score"].decode(Double?.self)
        let best = try StudyRecord.best(
            number: bestNumber, score: bestScore, front: try row["best_front"].decode(String?.self),
            study: try row["name"].decode(String.self))
        let after = since ?? -1
        let changes = try await connection.rows(
            "SELECT * FROM autotune_trials WHERE study_id = \(studyID) AND change > \(after) ORDER BY number",
            logger: logger
        ).map(Self.trial(from:))
        return SharedStudyState(
            checkpoint: try row["checkpoint"].decode(Data?.self),
            version: try row["checkpoint_version"].decode(Int64.self),
            changes: changes,
            sequence: try row["change"].decode(Int64.self),
            best: best
        )
    }

    private func saveFinished(
        _ trial: Trial,
        studyID: Int64,
        checkpoint: Data?,
        best: BestTrial?,
        elapsedSeconds: Double,
        connection: PostgresConnection
    ) async throws {
        try await Self.upsert(trial, studyID: studyID, worker: nil, connection: connection, logger: logger)
        if let checkpoint {
            try await Self.saveCheckpoint(checkpoint, studyID: studyID, connection: connection, logger: logger)
        }
        let number = best?.number
        let score = best?.score
        let front = StudyRecord.frontColumn(best)
        try await connection.rows(
            """
            UPDATE autotune_studies SET best_number = \(number), best_score = \(score), best_front = \(front),
                elapsed_seconds = GREATEST(elapsed_seconds, \(elapsedSeconds)), updated_at = now()
            WHERE id = \(studyID)
            """,
            logger: logger
        )
    }

    // MARK: - Rows

    static func trials(studyID: Int64, connection: PostgresConnection, logger: Logger) async throws -> [Trial] {
        try await connection.rows(
            "SELECT * FROM autotune_trials WHERE study_id = \(studyID) ORDER BY number", logger: logger
        ).map(trial(from:))
    }

    private static func upsert(
        _ trial: Trial,
        studyID: Int64,
        worker: RunnerIdentity?,
        connection: PostgresConnection,
        logger: Logger
    ) async throws {
        let row = try TrialRecord(trial, studyID: studyID)
        let change = try await nextChange(studyID: studyID, connection: connection, logger: logger)
        let workerHost = worker?.host
        let workerPID = worker.map { Int($0.pid) }
        let workerStarted = worker?.started
        try await connection.rows(
            """
            INSERT INTO autotune_trials (study_id, number, state, params, metrics, score, error_stage, error_message,
                timings, attempt, started_at, finished_at, heartbeat_at, gpus, port, host, worker_host, worker_pid,
                confirms, worker_started, change)
            VALUES (\(row.studyID), \(row.number), \(row.state), \(row.params), \(row.metrics), \(row.score),
                \(row.errorStage), \(row.errorMessage), \(row.timings), \(row.attempt), \(row.startedAt),
                \(row.finishedAt), now(), \(row.gpus), \(row.port), \(row.host), \(workerHost), \(workerPID),
                \(row.confirms), \(workerStarted), \(change))
            ON CONFLICT (study_id, number) DO UPDATE SET
                state = excluded.state, params = excluded.params, metrics = excluded.metrics,
                score = excluded.score, error_stage = excluded.error_stage, error_message = excluded.error_message,
                timings = excluded.timings, attempt = excluded.attempt, started_at = excluded.started_at,
                finished_at = excluded.finished_at, heartbeat_at = excluded.heartbeat_at, gpus = excluded.gpus,
                port = excluded.port, host = excluded.host, worker_host = excluded.worker_host,
                worker_pid = excluded.worker_pid, confirms = excluded.confirms,
                worker_started = excluded.worker_started, change = excluded.change
            """,
            logger: logger
        )
    }

    /// The study's next change number, for a trial's row written in this transaction. It locks the study's row
    /// until the transaction ends (the study's row before any trial's, as every transaction here takes them), so
    /// change numbers commit in the order they are taken and a reader of "changes after N" misses none.
    private static func nextChange(studyID: Int64, connection: PostgresConnection, logger: Logger) async throws
        -> Int64
    {
        let rows = try await connection.rows(
            "UPDATE autotune_studies SET change = change + 1 WHERE id = \(studyID) RETURNING change", logger: logger)
        guard let row = rows.first else { throw AutotuneError(.corrupt, "study \(studyID) is gone") }
        return try row.decode(Int64.self)
    }

    private static func saveCheckpoint(
        _ checkpoint: Data,
        studyID: Int64,
        connection: PostgresConnection,
        logger: Logger
    ) async throws {
        try await connection.rows(
            """
            UPDATE autotune_studies SET checkpoint = \(checkpoint), checkpoint_version = checkpoint_version + 1
            WHERE id = \(studyID)
            """,
            logger: logger
        )
    }

    private static func study(from row: PostgresRow) throws -> StoredStudy {
        let columns = row.makeRandomAccess()
        typealias Key = StudyRecord.CodingKeys
        return try StudyRecord(
            id: try columns[Key.id.rawValue].decode(Int64.self),
            name: try columns[Key.name.rawValue].decode(String.self),
            definition: try columns[Key.definition.rawValue].decode(String.self),
            taskSource: try columns[Key.taskSource.rawValue].decode(String?.self),
            status: try columns[Key.status.rawValue].decode(String.self),
            bestNumber: try columns[Key.bestNumber.rawValue].decode(Int?.self),
            bestScore: try columns[Key.bestScore.rawValue].decode(Double?.self),
            bestFront: try columns[Key.bestFront.rawValue].decode(String?.self),
            elapsedSeconds: try columns[Key.elapsedSeconds.rawValue].decode(Double.self),
            runnerHost: try columns[Key.runnerHost.rawValue].decode(String?.self),
            runnerPID: try columns[Key.runnerPID.rawValue].decode(Int?.self),
            runnerStarted: try columns[Key.runnerStarted.rawValue].decode(String?.self),
            createdAt: try columns[Key.createdAt.rawValue].decode(Date.self),
            updatedAt: try columns[Key.updatedAt.rawValue].decode(Date.self),
            checkpoint: try columns[Key.checkpoint.rawValue].decode(Data?.self)
        ).study()
    }

    static func trial(from row: PostgresRow) throws -> Trial {
        let columns = row.makeRandomAccess()
        typealias Key = TrialRecord.CodingKeys
        let record: TrialRecord
        do {
            record = TrialRecord(
                studyID: try columns[Key.studyID.rawValue].decode(Int64.self),
                number: try columns[Key.number.rawValue].decode(Int.self),
                state: try columns[Key.state.rawValue].decode(String.self),
                params: try columns[Key.params.rawValue].decode(String.self),
                metrics: try columns[Key.metrics.rawValue].decode(String.self),
                score: try columns[Key.score.rawValue].decode(Double?.self),
                errorStage: try columns[Key.errorStage.rawValue].decode(String?.self),
                errorMessage: try columns[Key.errorMessage.rawValue].decode(String?.self),
                timings: try columns[Key.timings.rawValue].decode(String.self),
                attempt: try columns[Key.attempt.rawValue].decode(Int.self),
                startedAt: try columns[Key.startedAt.rawValue].decode(Date?.self),
                finishedAt: try columns[Key.finishedAt.rawValue].decode(Date?.self),
                gpus: try columns[Key.gpus.rawValue].decode(String?.self),
                port: try columns[Key.port.rawValue].decode(Int?.self),
                host: try columns[Key.host.rawValue].decode(String?.self),
                confirms: try columns[Key.confirms.rawValue].decode(Int?.self)
            )
        } catch {
            throw AutotuneError(.corrupt, "a trial's row cannot be read (\(error))", underlying: error)
        }
        return try record.trial()
    }

    /// PostgreSQL's own message when there is one (`PSQLError` hides it from `description`).
    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            if let underlying = error.underlying { return "\(underlying)" }
            return "\(error.code)"
        }
        if let error = error as? PostgresTransactionError {
            if let closureError = error.closureError { return describe(closureError) }
            if let beginError = error.beginError { return describe(beginError) }
            if let commitError = error.commitError { return describe(commitError) }
        }
        return "\(error)"
    }
}

extension PostgresConnection {
    /// Runs a statement and reads all its rows, so the connection is free for the next one.
    @discardableResult
    func rows(_ query: PostgresQuery, logger: Logger) async throws -> [PostgresRow] {
        try await self.query(query, logger: logger).collect()
    }
}
