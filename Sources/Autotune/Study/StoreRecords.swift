public import Foundation

/// A trial as both stores keep it: one row of flat columns, JSON for the nested values.
///
/// The SQLite store reads and writes it as a GRDB record; the PostgreSQL store binds and decodes the same
/// fields. The mapping between a ``Trial`` and its row, and the errors for a row that cannot be read, are
/// written once, here.
public struct TrialRecord: Sendable, Hashable, Codable {
    /// The study's row id.
    public var studyID: Int64
    /// The trial's number.
    public var number: Int
    /// ``TrialState``'s raw value.
    public var state: String
    /// The configuration, as JSON.
    public var params: String
    /// The metrics, as JSON.
    public var metrics: String
    /// The score.
    public var score: Double?
    /// The failed stage.
    public var errorStage: String?
    /// The failure's message.
    public var errorMessage: String?
    /// The stage timings, as JSON.
    public var timings: String
    /// How many times it was started.
    public var attempt: Int
    /// When the current attempt started.
    public var startedAt: Date?
    /// When it finished.
    public var finishedAt: Date?
    /// The GPU indexes it held, as JSON.
    public var gpus: String?
    /// The port it held.
    public var port: Int?
    /// The node it ran on, when a scheduler chose it.
    public var host: String?
    /// The search trial a confirmation run re-measures.
    public var confirms: Int?

    /// The column names, for stores and queries.
    public enum CodingKeys: String, CodingKey, CaseIterable {
        case studyID = "study_id"
        case number, state, params, metrics, score
        case errorStage = "error_stage"
        case errorMessage = "error_message"
        case timings, attempt
        case startedAt = "started_at"
        case finishedAt = "finished_at"
        case gpus, port, host, confirms
    }

    /// Creates a record from its columns.
    public init(
        studyID: Int64, number: Int, state: String, params: String, metrics: String, score: Double?,
        errorStage: String?, errorMessage: String?, timings: String, attempt: Int, startedAt: Date?,
        finishedAt: Date?, gpus: String?, port: Int?, host: String?, confirms: Int? = nil
    ) {
        self.studyID = studyID
        self.number = number
        self.state = state
        self.params = params
        self.metrics = metrics
        self.score = score
        self.errorStage = errorStage
        self.errorMessage = errorMessage
        self.timings = timings
        self.attempt = attempt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.gpus = gpus
        self.port = port
        self.host = host
        self.confirms = confirms
    }

    /// The row of `trial` in study `studyID`.
    public init(_ trial: Trial, studyID: Int64) throws {
        self.studyID = studyID
        number = trial.number
        state = trial.state.rawValue
        params = try Self.json(trial.configuration)
        metrics = try Self.json(trial.metrics)
        score = trial.score
        errorStage = trial.error?.stage.rawValue
        errorMessage = trial.error?.message
        timings = try Self.json(trial.timings)
        attempt = trial.attempt
        startedAt = trial.startedAt
        finishedAt = trial.finishedAt
        gpus = try trial.gpus.map { try Self.json($0) }
        port = trial.port
        host = trial.host
        confirms = trial.confirms
    }

    /// The trial the row holds; ``AutotuneError`` with code `corrupt` when a column cannot be read.
    public func trial() throws(AutotuneError) -> Trial {
        guard let state = TrialState(rawValue: state) else {
            throw AutotuneError(.corrupt, "trial \(number): unknown state '\(state)'")
        }
        do {
            let decoder = JSONDecoder()
            var trial = Trial(
                number: number, configuration: try decoder.decode(Configuration.self, from: Data(params.utf8)))
            trial.state = state
            trial.metrics = try decoder.decode([String: Double].self, from: Data(metrics.utf8))
            trial.timings = try decoder.decode([String: Double].self, from: Data(timings.utf8))
            trial.score = score
            if let errorStage {
                trial.error = TrialError(stage: TrialStage(rawValue: errorStage), message: errorMessage ?? "")
            }
            trial.attempt = attempt
            trial.startedAt = startedAt
            trial.finishedAt = finishedAt
            trial.gpus = try gpus.map { try decoder.decode([Int].self, from: Data($0.utf8)) }
            trial.port = port
            trial.host = host
            trial.confirms = confirms
            return trial
        } catch {
            throw AutotuneError(.corrupt, "trial \(number): a JSON column cannot be read (\(error))", underlying: error)
        }
    }

    /// A value as the stores keep JSON: sorted keys, so equal values are equal text.
    public static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

/// A study as both stores keep it.
public struct StudyRecord: Sendable, Hashable, Codable {
    /// The row id.
    public var id: Int64
    /// The study's name.
    public var name: String
    /// The definition, as JSON.
    public var definition: String
    /// The task file's text.
    public var taskSource: String?
    /// ``StudyStatus``'s raw value.
    public var status: String
    /// The best trial's number.
    public var bestNumber: Int?
    /// The best trial's score.
    public var bestScore: Double?
    /// The Pareto front of a study of several objectives, as JSON (``FrontPoint``s).
    public var bestFront: String?
    /// Seconds of running time.
    public var elapsedSeconds: Double
    /// The host of the process running it.
    public var runnerHost: String?
    /// The pid of the process running it.
    public var runnerPID: Int?
    /// When the process running it started (``RunnerIdentity/started``).
    public var runnerStarted: String?
    /// When it was created.
    public var createdAt: Date
    /// When its runner last wrote to it.
    public var updatedAt: Date
    /// The strategy's latest checkpoint.
    public var checkpoint: Data?

    /// The column names, for stores and queries.
    public enum CodingKeys: String, CodingKey, CaseIterable {
        case id, name, definition
        case taskSource = "task_source"
        case status
        case bestNumber = "best_number"
        case bestScore = "best_score"
        case bestFront = "best_front"
        case elapsedSeconds = "elapsed_seconds"
        case runnerHost = "runner_host"
        case runnerPID = "runner_pid"
        case runnerStarted = "runner_started"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case checkpoint
    }

    /// Creates a record from its columns.
    public init(
        id: Int64, name: String, definition: String, taskSource: String?, status: String, bestNumber: Int?,
        bestScore: Double?, bestFront: String? = nil, elapsedSeconds: Double, runnerHost: String?, runnerPID: Int?,
        runnerStarted: String? = nil, createdAt: Date, updatedAt: Date, checkpoint: Data?
    ) {
        self.id = id
        self.name = name
        self.definition = definition
        self.taskSource = taskSource
        self.status = status
        self.bestNumber = bestNumber
        self.bestScore = bestScore
        self.bestFront = bestFront
        self.elapsedSeconds = elapsedSeconds
        self.runnerHost = runnerHost
        self.runnerPID = runnerPID
        self.runnerStarted = runnerStarted
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.checkpoint = checkpoint
    }

    /// The front's column value for `best` (`nil` without a front).
    public static func frontColumn(_ best: BestTrial?) -> String? {
        guard let front = best?.front, !front.isEmpty, let data = try? JSONEncoder().encode(front) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// The best trial from its columns; ``AutotuneError`` with code `corrupt` when the front cannot be read.
    public static func best(number: Int?, score: Double?, front: String?, study: String) throws(AutotuneError)
        -> BestTrial?
    {
        guard let number, let score else { return nil }
        var points: [FrontPoint] = []
        if let front {
            do {
                points = try JSONDecoder().decode([FrontPoint].self, from: Data(front.utf8))
            } catch {
                throw AutotuneError(
                    .corrupt, "study '\(study)': its Pareto front cannot be read (\(error))", underlying: error)
            }
        }
        return BestTrial(number: number, score: score, front: points)
    }

    /// The study the row holds; ``AutotuneError`` with code `corrupt` when it cannot be read.
    public func study() throws(AutotuneError) -> StoredStudy {
        let decoded: StudyDefinition
        do {
            decoded = try JSONDecoder().decode(StudyDefinition.self, from: Data(definition.utf8))
        } catch {
            throw AutotuneError(
                .corrupt, "study '\(name)': its definition cannot be read (\(error))", underlying: error)
        }
        guard let status = StudyStatus(rawValue: status) else {
            throw AutotuneError(.corrupt, "study '\(name)': unknown status '\(status)'")
        }
        return StoredStudy(
            id: id,
            definition: decoded,
            taskSource: taskSource,
            status: status,
            checkpoint: checkpoint,
            best: try Self.best(number: bestNumber, score: bestScore, front: bestFront, study: name),
            elapsedSeconds: elapsedSeconds,
            runner: runnerHost.flatMap { host in
                runnerPID.map { RunnerIdentity(host: host, pid: Int32($0), started: runnerStarted) }
            },
            createdAt: createdAt,
            updatedAt: updatedAt
        )
    }
}
