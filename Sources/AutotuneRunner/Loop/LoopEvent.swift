import Autotune
import Logging

/// What wakes a study's loop (``StudyLoop``): a trial's end, a stop request, a
/// heartbeat, or the time to look again for work.
enum LoopEvent: Sendable {
    case finished(Trial)
    case stop(StudyLoop.StopMode)
    case heartbeat
    case poll
    case refresh

    /// Waits for the next stop request; returns a drain when cancelled, which the loop no longer reads.
    static func nextStop(_ signals: AsyncStream<StudyLoop.StopMode>) async -> Self {
        for await mode in signals { return .stop(mode) }
        return .stop(.drain)
    }

    /// Sleeps, then returns `event`; a cancelled sleep ends early, which only happens as the loop ends.
    static func after(_ interval: Duration, _ event: Self) async -> Self {
        try? await Task.sleep(for: interval)
        return event
    }

    /// Applies a stop request to a loop whose stop mode is `current`, and returns the new mode.
    ///
    /// A drain keeps watching for a second request; a cancel cancels the whole group (trials and the watcher
    /// alike), after which no further request can matter.
    static func stop(
        _ mode: StudyLoop.StopMode,
        current: StudyLoop.StopMode?,
        running: Int,
        logger: Logger,
        group: inout ThrowingTaskGroup<Self, any Error>,
        signals: AsyncStream<StudyLoop.StopMode>
    ) -> StudyLoop.StopMode? {
        if current == .cancel { return current }
        // The command line says so in its own words; the log keeps the detail.
        logger.info(
            mode == .cancel ? "Stopping: cancelling running trials" : "Stopping: draining running trials",
            metadata: ["study.running": "\(running)"]
        )
        if mode == .cancel {
            group.cancelAll()
        } else {
            group.addTask { await nextStop(signals) }
        }
        return mode
    }
}
