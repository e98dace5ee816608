public import Autotune
public import AutotuneRunner

/// An in-process experiment whose outcome is a function of the configuration, for tests of code built on
/// the loop: no process is started, and failures, delays and metrics are whatever the script says.
public struct ScriptedExperiment: Experiment {
    /// What one run does.
    public enum Outcome: Sendable {
        /// Report these metrics.
        case metrics([String: Double])
        /// Fail at this stage with this message.
        case failure(TrialStage, String)
    }

    private let delay: @Sendable (Trial) -> Duration
    private let script: @Sendable (Trial) -> Outcome

    /// Creates an experiment that waits `delay(trial)` (cancellably) then does what `script` says.
    public init(
        delay: @escaping @Sendable (Trial) -> Duration = { _ in .zero },
        script: @escaping @Sendable (Trial) -> Outcome
    ) {
        self.delay = delay
        self.script = script
    }

    /// An experiment reporting one metric computed from the configuration.
    public static func metric(
        _ name: String,
        delay: Duration = .zero,
        _ value: @escaping @Sendable (Configuration) -> Double
    ) -> Self {
        Self(delay: { _ in delay }) { trial in .metrics([name: value(trial.configuration)]) }
    }

    /// Waits, then reports or fails as scripted.
    public func run(_ context: TrialContext) async throws -> ExperimentResult {
        let wait = delay(context.trial)
        if wait > .zero { try await Task.sleep(for: wait) }
        try Task.checkCancellation()
        switch script(context.trial) {
        case .metrics(let metrics):
            return ExperimentResult(metrics: metrics)
        case .failure(let stage, let message):
            throw ExperimentError(stage: stage, message: message)
        }
    }
}
