public import Foundation

/// One experiment of a study: a configuration, what happened to it, and what it measured.
public struct Trial: Sendable, Hashable, Codable, Identifiable {
    /// The trial's number in its study, from 0, in the order it was asked for.
    public var number: Int
    /// The parameter values it ran with.
    public var configuration: Configuration
    /// Where it is in its life.
    public var state: TrialState
    /// The named measurements its experiment reported (plus `wall_time`).
    public var metrics: [String: Double]
    /// The objective's value, set when the trial completed.
    public var score: Double?
    /// Why it failed, when it did.
    public var error: TrialError?
    /// Seconds spent per stage (`run`, `deploy`, `benchmark`, …).
    public var timings: [String: Double]
    /// How many times it was started: more than 1 when a crash or interruption re-queued it.
    public var attempt: Int
    /// The GPU indexes the trial held, when the study uses GPUs.
    public var gpus: [Int]?
    /// The host port the trial held, when it used one.
    public var port: Int?
    /// The machine the trial ran on when it was not the runner's own (a Slurm node).
    public var host: String?
    /// When the current attempt started.
    public var startedAt: Date?
    /// When it finished.
    public var finishedAt: Date?
    /// For a confirmation run (``ConfirmationPhase``), the number of the search trial whose configuration it
    /// re-measures; `nil` for a trial of the search.
    public var confirms: Int?

    /// Creates a pending trial.
    public init(number: Int, configuration: Configuration) {
        self.number = number
        self.configuration = configuration
        self.state = .pending
        self.metrics = [:]
        self.score = nil
        self.error = nil
        self.timings = [:]
        self.attempt = 0
    }

    /// The number, as `Identifiable` wants.
    public var id: Int { number }

    /// Whether the trial has reached a final state.
    public var isFinished: Bool { state.isFinished }

    /// Puts an interrupted trial back to pending, as if it had not started: it runs again, untold.
    public mutating func returnToPending() {
        state = .pending
        error = nil
        finishedAt = nil
    }
}

/// The life of a trial: `pending → running → completed | failed | pruned`.
public enum TrialState: String, Sendable, Hashable, Codable, CaseIterable {
    /// Asked for, not started (or re-queued after an interruption).
    case pending
    /// Its experiment is running.
    case running
    /// Its experiment finished and the objective was scored.
    case completed
    /// Its experiment or scoring failed; ``Trial/error`` says at which stage.
    case failed
    /// Stopped early by a strategy's decision.
    case pruned

    /// Whether no further transition can happen.
    public var isFinished: Bool {
        switch self {
        case .completed, .failed, .pruned: true
        case .pending, .running: false
        }
    }
}

/// Why a trial failed: the stage it was in and a message for a person.
public struct TrialError: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The stage that failed.
    public var stage: TrialStage
    /// What happened, e.g. the exit status and the last lines of the process's output.
    public var message: String

    /// Creates an error.
    public init(stage: TrialStage, message: String) {
        self.stage = stage
        self.message = message
    }

    /// `stage: message`.
    public var description: String { "\(stage.rawValue): \(message)" }

    /// What went wrong in one line: the message's first line, without the quoted output it may end with.
    public var headline: String {
        var first = message.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        for marker in ["; last output:", "; its stderr:"] where first.hasSuffix(marker) {
            first.removeLast(marker.count)
        }
        return first
    }

    /// The most telling line of the program's output, when the message quotes it: the last line that looks like
    /// an error (`ValueError: No available memory…`, `Unknown option '--max-num-seq'`), else the last line.
    public var cause: String? {
        let lines = message.split(whereSeparator: \.isNewline).dropFirst().map {
            $0.trimmingCharacters(in: .whitespaces)
        }.filter { !$0.isEmpty }
        guard !lines.isEmpty else { return nil }
        let telling = lines.last { line in
            let lower = line.lowercased()
            // Traceback frames name where, not what.
            guard !lower.hasPrefix("file \""), !lower.hasPrefix("at ") else { return false }
            return Self.errorWords.contains { lower.contains($0) }
        }
        return telling ?? lines.last
    }

    /// `stage: headline: cause` on one line, for progress lines, tables and `status`.
    public var summary: String {
        guard let cause, !headline.contains(cause) else { return "\(stage.rawValue): \(headline)" }
        return "\(stage.rawValue): \(headline): \(cause)"
    }

    private static let errorWords = [
        "error", "exception", "fatal", "failed", "failure", "unknown option", "unrecognized", "not found",
        "no such", "invalid", "out of memory", "oom", "killed", "refused", "cannot", "can't", "panic", "abort",
        "denied", "too small", "too large", "must be", "is smaller than", "exceeds",
    ]
}

/// A step of a trial's life, used for timings and failure reports.
///
/// A struct over a string, not an enum, so experiments can name their own stages.
public struct TrialStage: RawRepresentable, Sendable, Hashable, Codable, ExpressibleByStringLiteral,
    CustomStringConvertible
{
    /// The stage's name.
    public var rawValue: String

    /// Creates a stage from its name.
    public init(rawValue: String) { self.rawValue = rawValue }

    /// Creates a stage from a literal.
    public init(stringLiteral value: String) { self.rawValue = value }

    /// The name.
    public var description: String { rawValue }

    /// Starting the experiment's process.
    public static let launch: Self = "launch"
    /// Running a command experiment to its end.
    public static let run: Self = "run"
    /// Leasing GPUs and reserving a port.
    public static let resources: Self = "resources"
    /// Starting a model server.
    public static let deploy: Self = "deploy"
    /// Waiting for a model server's health check.
    public static let ready: Self = "ready"
    /// Warming up and benchmarking a model server.
    public static let benchmark: Self = "benchmark"
    /// Reading the experiment's metrics.
    public static let metrics: Self = "metrics"
    /// Scoring the metrics against the objective and its constraints.
    public static let objective: Self = "objective"
    /// The trial ran past its deadline.
    public static let timeout: Self = "timeout"
    /// The runner stopped while the trial was running.
    public static let interrupted: Self = "interrupted"
    /// The runner died while the trial was running; found at resume.
    public static let lost: Self = "lost"
    /// Submitting to or waiting on a cluster's scheduler (Slurm).
    public static let schedule: Self = "schedule"

    /// Whether a failure at this stage says something about the configuration (it crashed, would not start,
    /// never became ready, ran past its time, measured nothing), so a strategy should learn to avoid its region.
    /// Failures of the machine or the runner (`resources`, `lost`, `interrupted`, `schedule`, a program that
    /// cannot be started at all) do not.
    public var isConfigurationFault: Bool {
        [Self.run, .deploy, .ready, .benchmark, .timeout, .metrics, .objective].contains(self)
    }
}

extension Trial {
    /// Scores the trial's metrics by `objective`: completed with the score, or failed at stage `objective` with
    /// what was wrong (a missing metric, a broken hard constraint).
    public mutating func score(by objective: Objective) {
        switch objective.evaluate(metrics) {
        case .success(let value):
            state = .completed
            score = value
        case .failure(let failure):
            state = .failed
            error = TrialError(stage: .objective, message: failure.description)
        }
    }
}
