import Autotune
import Logging

/// What wakes a study's loop (``StudyLoop``): a trial's end, a stop request, a
/// heartbeat, or the time to look again for work.
enum LoopEvent: Sendable {
    /// A trial's experiment ended.
    case finished(Trial)
    /// The coordinator started these trials (already saved as running).
    case obtained([Trial], done: Bool, view: CoordinatorView)
    /// The coordinator recorded a finished trial (`finished`) or put it back to pending.
    case recorded(Trial, finished: Bool, view: CoordinatorView)
    /// The coordinator took back what it could of dead workers' trials.
    case reclaimed(CoordinatorView?)
    /// A stop was requested.
    case stop(StudyLoop.StopMode)
    /// Time to stamp the heartbeat.
    case heartbeat
    /// The heartbeat was stamped.
    case stamped
    /// Time to look again for work others may have made.
    case poll
    /// Time to redraw the progress.
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
        signals: AsyncStream<StudyLoop.StopMode>,
        listen: Bool = true
    ) -> StudyLoop.StopMode? {
        if current == .cancel { return current }
        // The command line says so in its own words; the log keeps the detail.
        logger.info(
            mode == .cancel ? "Stopping: cancelling running trials" : "Stopping: draining running trials",
            metadata: ["study.running": "\(running)"]
        )
        if mode == .cancel {
            group.cancelAll()
        } else if listen {
            group.addTask { await nextStop(signals) }
        }
        return mode
    }
}
