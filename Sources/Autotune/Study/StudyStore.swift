public import Foundation

/// Where studies, trials and strategy checkpoints live.
///
/// Every write that changes what a strategy knows also writes the strategy's checkpoint, in one
/// transaction, so the store never holds a trial the strategy has not seen nor a strategy state ahead of
/// the trials.
public protocol StudyStore: Sendable {
    /// Where the store keeps its data (a file's path, a server's address without its password), to tell two
    /// stores' studies of the same name apart and to name the store in messages.
    var location: String { get }

    /// Creates a study; fails if the name is taken.
    func createStudy(_ definition: StudyDefinition, taskSource: String?) async throws -> StoredStudy

    /// The study called `name`, or `nil`.
    func study(named name: String) async throws -> StoredStudy?

    /// Every study, oldest first.
    func studies() async throws -> [StoredStudy]

    /// The study's trials in number order.
    func trials(ofStudy studyID: Int64) async throws -> [Trial]

    /// Saves trials that are starting (new ones from an ask, or re-queued ones) with the strategy state that
    /// proposed them.
    func saveLaunched(_ trials: [Trial], studyID: Int64, checkpoint: Data?) async throws

    /// Saves a finished trial together with the strategy state that has been told of it and the study's
    /// best trial.
    func saveFinished(_ trial: Trial, studyID: Int64, checkpoint: Data?, best: BestTrial?, elapsedSeconds: Double)
        async throws

    /// Puts trials back to pending without telling the strategy (interrupted or lost and re-queued).
    func saveRequeued(_ trials: [Trial], studyID: Int64) async throws

    /// Marks the study's running trials and its runner as alive now, and records its running time.
    func saveHeartbeat(studyID: Int64, elapsedSeconds: Double) async throws

    /// Replaces the study's definition and task file text (a resume with a changed task file), keeping its
    /// trials and checkpoint; the caller has checked the change keeps them valid
    /// (``StudyDefinition/changes(to:)``).
    func saveDefinition(_ definition: StudyDefinition, taskSource: String?, studyID: Int64) async throws

    /// Deletes the study with its trials and checkpoint.
    func deleteStudy(_ studyID: Int64) async throws

    /// Records the study's status, the process running it (or `nil`), and its accumulated running time.
    func saveStatus(_ status: StudyStatus, studyID: Int64, runner: RunnerIdentity?, elapsedSeconds: Double)
        async throws
}

/// A study as stored.
public struct StoredStudy: Sendable, Hashable {
    /// The row id.
    public var id: Int64
    /// The definition it was created with.
    public var definition: StudyDefinition
    /// The task file's text, when it came from one.
    public var taskSource: String?
    /// Where it stands.
    public var status: StudyStatus
    /// The latest strategy checkpoint, if any.
    public var checkpoint: Data?
    /// The best trial so far.
    public var best: BestTrial?
    /// Seconds of running time, over every run and resume.
    public var elapsedSeconds: Double
    /// The process running it now, if one is.
    public var runner: RunnerIdentity?
    /// When it was created.
    public var createdAt: Date
    /// When its runner last wrote to it (a heartbeat while it runs).
    public var updatedAt: Date

    /// Creates a record.
    public init(
        id: Int64,
        definition: StudyDefinition,
        taskSource: String?,
        status: StudyStatus,
        checkpoint: Data?,
        best: BestTrial?,
        elapsedSeconds: Double,
        runner: RunnerIdentity?,
        createdAt: Date,
        updatedAt: Date? = nil
    ) {
        self.id = id
        self.definition = definition
        self.taskSource = taskSource
        self.status = status
        self.checkpoint = checkpoint
        self.best = best
        self.elapsedSeconds = elapsedSeconds
        self.runner = runner
        self.createdAt = createdAt
        self.updatedAt = updatedAt ?? createdAt
    }
}

/// The best trial of a study and its score; in a study of several objectives, also its Pareto front.
public struct BestTrial: Sendable, Hashable, Codable {
    /// The trial's number.
    public var number: Int
    /// Its score (the first objective's, with several).
    public var score: Double
    /// The feasible trials no other dominates, best first on the first objective; empty with one objective.
    public var front: [FrontPoint]

    /// Creates a record.
    public init(number: Int, score: Double, front: [FrontPoint] = []) {
        self.number = number
        self.score = score
        self.front = front
    }

    private enum CodingKeys: String, CodingKey {
        case number, score, front
    }

    /// Decodes a record; ones written before several objectives existed have no front.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        number = try container.decode(Int.self, forKey: .number)
        score = try container.decode(Double.self, forKey: .score)
        front = try container.decodeIfPresent([FrontPoint].self, forKey: .front) ?? []
    }
}

/// A trial on a study's Pareto front and its objective values (in the metrics' own units).
public struct FrontPoint: Sendable, Hashable, Codable {
    /// The trial's number.
    public var number: Int
    /// One value per objective, in the order the objectives are declared.
    public var values: [Double]

    /// Creates a point.
    public init(number: Int, values: [Double]) {
        self.number = number
        self.values = values
    }
}

/// Where a study stands.
public enum StudyStatus: String, Sendable, Hashable, Codable {
    /// Created, or being run now.
    case running
    /// Stopped by a signal or a crash before its budget ran out; `resume` goes on.
    case interrupted
    /// Its budget ran out or its strategy was exhausted.
    case completed
}

/// The process that runs a study, so a second one does not run it at the same time.
public struct RunnerIdentity: Sendable, Hashable, Codable {
    /// The host name.
    public var host: String
    /// The process id.
    public var pid: Int32
    /// When the process started, as its kernel tells it (an opaque mark: the boot and the clock tick): with the
    /// pid it names one process, so a later process that is given the same pid is not taken for a runner that
    /// died. `nil` in records written before it was kept, and where the kernel does not say.
    public var started: String?

    /// Creates an identity.
    public init(host: String, pid: Int32, started: String? = nil) {
        self.host = host
        self.pid = pid
        self.started = started
    }
}
