public import AutotuneRunner
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// SIGINT and SIGTERM turned into stop requests for a study's loop: the first drains, the second cancels.
///
/// The handlers are installed with `sigaction` when ``install()`` returns, before any study is opened; a signal
/// that arrives before the loop exists is kept and handed to it when it is attached, so no signal is lost in
/// between (a dispatch source ignores the signal until it is registered, which took long enough to lose one
/// sent as the study started). The handler only writes the signal's number to a pipe, which is all a signal
/// handler may safely do; a thread reads the pipe and does the rest.
public final class StopSignals: Sendable {
    private struct State {
        var received: [Int32] = []
        var loop: StudyLoop?
        var announce: (@Sendable (_ first: Bool) -> Void)?
    }

    private let state = Mutex(State())

    /// The one watcher of this process: signal dispositions are per process.
    public static let shared = StopSignals()

    private init() {}

    /// Installs the handlers (once per process) and starts the thread that reads what they write.
    public func install() {
        _ = Self.installation
    }

    private static let installation: Void = {
        var descriptors: [Int32] = [0, 0]
        guard pipe(&descriptors) == 0 else { return }
        // A full pipe must drop a signal byte, never block the handler.
        _ = fcntl(descriptors[1], F_SETFL, fcntl(descriptors[1], F_GETFL) | O_NONBLOCK)
        signalPipe.store(descriptors[1], ordering: .sequentiallyConsistent)
        let reader = descriptors[0]
        // A process inherits its signal mask from whoever started it (a test harness's thread, a supervisor):
        // with SIGINT blocked there, no handler would ever run. The reader thread unblocks both, so there is
        // always a thread the kernel can deliver them to.
        var stops = sigset_t()
        sigemptyset(&stops)
        sigaddset(&stops, SIGINT)
        sigaddset(&stops, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &stops, nil)
        let thread = Thread {
            var stops = sigset_t()
            sigemptyset(&stops)
            sigaddset(&stops, SIGINT)
            sigaddset(&stops, SIGTERM)
            pthread_sigmask(SIG_UNBLOCK, &stops, nil)
            var byte: UInt8 = 0
            while true {
                let count = read(reader, &byte, 1)
                if count == 1 {
                    StopSignals.shared.received(Int32(byte))
                } else if count < 0, errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }
        thread.name = "autotune-signals"
        thread.start()
        for number in [SIGINT, SIGTERM] {
            var action = sigaction()
            #if canImport(Darwin)
                action.__sigaction_u.__sa_handler = signalHandler
            #else
                action.__sigaction_handler.sa_handler = signalHandler
            #endif
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(number, &action, nil)
        }
    }()

    /// Hands the stops received so far to `loop`, and every later one as it arrives; `announce` is told of each
    /// (whether it is the first) to say on screen what happens.
    public func attach(_ loop: StudyLoop, announce: @escaping @Sendable (_ first: Bool) -> Void) {
        let earlier = state.withLock { state in
            state.loop = loop
            state.announce = announce
            return state.received.count
        }
        for index in 0..<min(earlier, 2) {
            announce(index == 0)
            loop.requestStop(index == 0 ? .drain : .cancel)
        }
    }

    /// Stops handing signals to the loop (it has ended); they are still counted.
    public func detach() {
        state.withLock {
            $0.loop = nil
            $0.announce = nil
        }
    }

    /// The first signal received, if any: the exit code is 128 plus it.
    public var firstReceived: Int32? { state.withLock { $0.received.first } }

    private func received(_ number: Int32) {

        let (loop, announce, first) = state.withLock { state in
            state.received.append(number)
            return (state.loop, state.announce, state.received.count == 1)
        }
        guard let loop else { return }
        announce?(first)
        loop.requestStop(first ? .drain : .cancel)
    }
}

/// The pipe's write end, read by the signal handler.
private let signalPipe = Atomic<Int32>(-1)

/// Writes the signal's number to the pipe: `write` is async-signal-safe, and `errno` is put back as it was.
private func signalHandler(_ number: Int32) {
    let saved = errno
    var byte = UInt8(truncatingIfNeeded: number)
    _ = write(signalPipe.load(ordering: .sequentiallyConsistent), &byte, 1)
    errno = saved
}
