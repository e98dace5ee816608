public import Autotune
import Foundation

/// Receives the study's progress from the loop.
public protocol ProgressReporter: Sendable {
    /// Called once per finished trial, on the loop's actor, so it must return quickly.
    func trialFinished(_ event: ProgressEvent)
}

/// A reporter that reports nothing, for tests and embedding.
public struct SilentProgress: ProgressReporter {
    /// Creates the reporter.
    public init() {}

    /// Does nothing.
    public func trialFinished(_ event: ProgressEvent) {}
}

/// Writes one line per finished trial to standard error.
public struct LineProgress: ProgressReporter {
    /// Creates the reporter.
    public init() {}

    /// Writes ``ProgressEvent/line``.
    public func trialFinished(_ event: ProgressEvent) {
        FileHandle.standardError.write(Data((event.line + "\n").utf8))
    }
}

/// Where a study stands when a trial finishes.
public struct ProgressEvent: Sendable {
    /// The trial that finished.
    public var trial: Trial
    /// The study's space.
    public var space: SearchSpace
    /// The study's objective.
    public var objective: Objective
    /// The best trial so far.
    public var best: BestTrial?
    /// Trials finished in the study, this one included.
    public var finishedCount: Int
    /// The trials the study will have, when known (budget or grid size).
    public var expectedCount: Int?
    /// Trials running now.
    public var runningCount: Int
    /// The study's running time over every run, in seconds.
    public var elapsedSeconds: Double
    /// Trials finished by this run.
    public var finishedThisRun: Int
    /// Seconds this run has taken.
    public var runSeconds: Double

    /// `[12/50] trial 12 ok throughput=412.5 best=431.2 (#7) · 3 running · 4m12s · 2.9 trials/min`.
    public var line: String {
        let total = expectedCount.map(String.init) ?? "?"
        var text = "[\(finishedCount)/\(total)] trial \(trial.number) "
        switch trial.state {
        case .completed:
            text += "ok \(objective.label)=\(ProgressFormat.number(trial.score ?? .nan))"
        default:
            let reason =
                (trial.error?.description ?? trial.state.rawValue)
                .split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
            text += "failed (\(reason.count > 100 ? String(reason.prefix(100)) + "…" : reason))"
        }
        if let best { text += " best=\(ProgressFormat.number(best.score)) (#\(best.number))" }
        text += " · \(runningCount) running · \(ProgressFormat.duration(elapsedSeconds))"
        if runSeconds > 0 {
            text += " · " + String(format: "%.1f", Double(finishedThisRun) / runSeconds * 60) + " trials/min"
        }
        return text
    }

}

/// How numbers and durations look in progress lines and tables.
public enum ProgressFormat {
    /// A number with four significant digits.
    public static func number(_ value: Double) -> String {
        guard value.isFinite else { return "\(value)" }
        return String(format: "%.4g", value)
    }

    /// `4m12s`, `1h03m`, `12.3s`.
    public static func duration(_ seconds: Double) -> String {
        if seconds < 60 { return String(format: "%.1fs", seconds) }
        let whole = Int(seconds)
        if whole < 3600 { return "\(whole / 60)m\(String(format: "%02d", whole % 60))s" }
        return "\(whole / 3600)h\(String(format: "%02d", whole % 3600 / 60))m"
    }
}
