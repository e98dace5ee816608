import Synchronization

/// Lets at most `limit` launches (process starts, server deploys) run at once, first come first served.
///
/// Launching is the contended step of an experiment (model loading, memory allocation, compilation caches),
/// so it is bounded separately from `parallel`: twelve servers may run while only two start at a time.
/// A class around a `Mutex` rather than an actor, so a cancelled waiter leaves the queue synchronously in
/// its cancellation handler.
public final class LaunchLimiter: Sendable {
    private struct State {
        var running = 0
        var peak = 0
        var nextID = 0
        var waiters: [(id: Int, continuation: CheckedContinuation<Void, any Error>)] = []
    }

    /// The most launches at once.
    public let limit: Int
    private let state = Mutex(State())

    /// Creates a limiter; `limit` is at least 1.
    public init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// Runs `body` once a launch slot is free, releasing the slot when it returns or throws.
    public func withPermit<T>(_ body: () async throws -> T) async throws -> T {
        try await acquire()
        defer { release() }
        return try await body()
    }

    /// Waits for a slot. Cancelling the waiting task gives up its place and throws `CancellationError`.
    public func acquire() async throws {
        let id: Int? = state.withLock { state in
            if state.running < limit, state.waiters.isEmpty {
                state.running += 1
                state.peak = max(state.peak, state.running)
                return nil
            }
            state.nextID += 1
            return state.nextID
        }
        guard let id else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let cancelled = state.withLock { state in
                    if Task.isCancelled { return true }
                    state.waiters.append((id, continuation))
                    return false
                }
                if cancelled { continuation.resume(throwing: CancellationError()) }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                state.waiters.firstIndex { $0.id == id }.map { state.waiters.remove(at: $0) }
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Frees a slot, handing it straight to the longest waiter.
    public func release() {
        let next = state.withLock { state in
            if state.waiters.isEmpty {
                state.running -= 1
                return nil as CheckedContinuation<Void, any Error>?
            }
            return state.waiters.removeFirst().continuation
        }
        next?.resume()
    }

    /// The launches running now.
    public var active: Int { state.withLock { $0.running } }

    /// The most launches that ever ran at once.
    public var peak: Int { state.withLock { $0.peak } }

    /// Callers waiting for a permit now.
    public var waiting: Int { state.withLock { $0.waiters.count } }
}
