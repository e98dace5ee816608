public import Autotune
public import Foundation
import Synchronization

/// Receives the study's progress from the loop.
public protocol ProgressReporter: Sendable {
    /// Called once per finished trial, on the loop's actor, so it must return quickly.
    func trialFinished(_ event: ProgressEvent)

    /// Called when trials start; `event.trial` is the last one started.
    func trialsStarted(_ event: ProgressEvent)

    /// Called once when the run ends, however it ends.
    func studyFinished()

    /// How often the loop calls ``refresh(_:)`` while trials run (a live bar's clock and ETA), or `nil` for never.
    var refreshInterval: Duration? { get }

    /// Called every ``refreshInterval`` with where the study stands now; `event.trial` is the last one started or
    /// finished.
    func refresh(_ event: ProgressEvent)
}

extension ProgressReporter {
    /// Most reporters print on events only.
    public var refreshInterval: Duration? { nil }

    /// Most reporters print on events only.
    public func refresh(_ event: ProgressEvent) {}

    /// Most reporters only report finished trials.
    public func trialsStarted(_ event: ProgressEvent) {}

    /// Most reporters have nothing to close.
    public func studyFinished() {}
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

/// A line per finished trial, with a live bar below them on a terminal: counts, best score, elapsed time and
/// an estimate of the time left, redrawn every second so the clock moves.
///
/// Everything else written to the terminal while the bar is up (log lines, the Ctrl-C message) goes through
/// the same ``TerminalScreen``, which lifts the bar, writes the line, and puts the bar back below it.
public struct TerminalProgress: ProgressReporter {
    /// Columns of the bar itself.
    public var width: Int
    /// Where the bar and the lines are drawn.
    public var screen: TerminalScreen

    /// Creates the reporter.
    public init(width: Int = 24, screen: TerminalScreen = .standardError) {
        self.width = width
        self.screen = screen
    }

    /// Prints the trial's line above the bar, then redraws the bar.
    public func trialFinished(_ event: ProgressEvent) {
        screen.line(event.line)
        screen.bar(event.bar(width: width))
    }

    /// Redraws the bar.
    public func trialsStarted(_ event: ProgressEvent) {
        screen.bar(event.bar(width: width))
    }

    /// Every second.
    public var refreshInterval: Duration? { .seconds(1) }

    /// Redraws the bar with the time now.
    public func refresh(_ event: ProgressEvent) {
        screen.bar(event.bar(width: width))
    }

    /// Takes the bar down, so what follows starts on a line of its own.
    public func studyFinished() {
        screen.clearBar()
    }
}

/// A terminal with at most one live bar at its bottom line: a line written through it lands above the bar,
/// never inside it.
public final class TerminalScreen: Sendable {
    private let bar = Mutex<String?>(nil)
    private let handle: FileHandle

    /// The screen on standard error.
    public static let standardError = TerminalScreen(handle: .standardError)

    /// A screen writing to `handle`.
    public init(handle: FileHandle) { self.handle = handle }

    /// Writes `text` on a line of its own above the bar.
    public func line(_ text: String) {
        bar.withLock { current in
            write((current == nil ? "" : "\r\u{1B}[2K") + text + "\n" + (current ?? ""))
        }
    }

    /// Writes `text` on a line of its own after ending the current line as it is, for a message that answers
    /// what the terminal itself echoed there (`^C`).
    public func lineAfterBreak(_ text: String) {
        bar.withLock { current in
            write("\n" + text + "\n" + (current ?? ""))
        }
    }

    /// Draws (or redraws) the bar.
    public func bar(_ text: String) {
        bar.withLock { current in
            current = text
            write("\r\u{1B}[2K" + text)
        }
    }

    /// Takes the bar away, leaving the cursor at the start of an empty line.
    public func clearBar() {
        bar.withLock { current in
            if current != nil { write("\r\u{1B}[2K") }
            current = nil
        }
    }

    private func write(_ text: String) {
        handle.write(Data(text.utf8))
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
    /// Completed trials in the study.
    public var completedCount: Int
    /// Failed trials in the study.
    public var failedCount: Int
    /// The study's running time over every run, in seconds.
    public var elapsedSeconds: Double
    /// Trials finished by this run.
    public var finishedThisRun: Int
    /// Seconds this run has taken.
    public var runSeconds: Double

    /// Creates an event.
    public init(
        trial: Trial,
        space: SearchSpace,
        objective: Objective,
        best: BestTrial?,
        finishedCount: Int,
        expectedCount: Int?,
        runningCount: Int,
        completedCount: Int,
        failedCount: Int,
        elapsedSeconds: Double,
        finishedThisRun: Int,
        runSeconds: Double
    ) {
        self.trial = trial
        self.space = space
        self.objective = objective
        self.best = best
        self.finishedCount = finishedCount
        self.expectedCount = expectedCount
        self.runningCount = runningCount
        self.completedCount = completedCount
        self.failedCount = failedCount
        self.elapsedSeconds = elapsedSeconds
        self.finishedThisRun = finishedThisRun
        self.runSeconds = runSeconds
    }

    /// `[12/50] trial 12 ok throughput=412.5 best=431.2 (#7) · 3 running · 4m12s · 2.9 trials/min`.
    public var line: String {
        let total = expectedCount.map(String.init) ?? "?"
        var text = "[\(finishedCount)/\(total)] trial \(trial.number) "
        if let target = trial.confirms { text += "(confirms #\(target)) " }
        switch trial.state {
        case .completed:
            text += "ok \(objective.label)=\(ProgressFormat.number(trial.score ?? .nan))"
        case .pruned:
            let saved =
                trial.metrics["benchmark_s_saved"].map { ", \(ProgressFormat.duration($0)) of benchmark saved" } ?? ""
            text += "pruned (\(trial.error?.message.replacingOccurrences(of: "pruned: ", with: "") ?? "")\(saved))"
        default:
            let reason = trial.error?.summary ?? trial.state.rawValue
            text += "failed (\(reason.count > 200 ? String(reason.prefix(199)) + "…" : reason))"
        }
        if let best { text += " best=\(ProgressFormat.number(best.score)) (#\(best.number))" }
        text += " · \(runningCount) running · \(ProgressFormat.duration(elapsedSeconds))"
        if runSeconds > 0 {
            text += " · " + ProgressFormat.rate(Double(finishedThisRun) / runSeconds * 60) + " trials/min"
        }
        return text
    }

    /// The live bar: `[######------] 9/24 ok 8 failed 1 running 3 · best=431.2 · 4m12s · ETA 6m40s`.
    public func bar(width: Int) -> String {
        let fraction = expectedCount.map { $0 > 0 ? min(1, Double(finishedCount) / Double($0)) : 1 } ?? 0
        let filled = Int((fraction * Double(width)).rounded(.down))
        var text = "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "] "
        text += "\(finishedCount)/\(expectedCount.map(String.init) ?? "?") ok \(completedCount) failed \(failedCount)"
        text += " running \(runningCount)"
        if let best { text += " · best=\(ProgressFormat.number(best.score))" }
        text += " · \(ProgressFormat.duration(elapsedSeconds))"
        if let expectedCount, finishedThisRun > 0, expectedCount > finishedCount {
            let perTrial = runSeconds / Double(finishedThisRun)
            text += " · ETA \(ProgressFormat.duration(perTrial * Double(expectedCount - finishedCount)))"
        }
        return text
    }
}

/// How numbers and durations look in progress lines and tables.
public enum ProgressFormat {
    /// A number with about four significant digits, without an exponent in the usual ranges.
    public static func number(_ value: Double) -> String { HumanNumber.format(value) }

    /// A rate (trials per minute): three significant digits, `15200`, `2.9`.
    public static func rate(_ value: Double) -> String { HumanNumber.format(value, digits: 3) }

    /// `4m12s`, `1h03m`, `12.3s`.
    public static func duration(_ seconds: Double) -> String {
        if seconds < 60 { return String(format: "%.1fs", seconds) }
        let whole = Int(seconds)
        if whole < 3600 { return "\(whole / 60)m\(String(format: "%02d", whole % 60))s" }
        return "\(whole / 3600)h\(String(format: "%02d", whole % 3600 / 60))m"
    }
}
