/// What a strategy sees when it is asked: the finished trials and the ones still running.
///
/// Kept up to date incrementally by the loop, so handing it to ``Strategy/ask(_:history:)`` costs nothing
/// however long the study is.
public struct StudyHistory: Sendable {
    /// Finished trials (completed, failed, pruned) in the order they finished.
    public private(set) var finished: [Trial] = []
    /// Trials asked for and not finished (pending or running), by number.
    public private(set) var running: [Int: Trial] = [:]
    /// Every configuration of a trial in the study, finished or not.
    public private(set) var configurations: Set<Configuration> = []

    /// An empty history.
    public init() {}

    /// A history built from a study's trials in any state.
    public init(trials: some Sequence<Trial>) {
        for trial in trials { record(trial) }
    }

    /// Adds a trial or moves it from running to finished.
    public mutating func record(_ trial: Trial) {
        configurations.insert(trial.configuration)
        if trial.isFinished {
            running[trial.number] = nil
            finished.append(trial)
        } else {
            running[trial.number] = trial
        }
    }

    /// Whether a trial with this configuration exists in the study.
    public func contains(_ configuration: Configuration) -> Bool {
        configurations.contains(configuration)
    }

    /// The running trials in number order.
    public var runningTrials: [Trial] {
        running.values.sorted { $0.number < $1.number }
    }

    /// The number of trials in the study.
    public var count: Int { finished.count + running.count }
}
