import Autotune
import Foundation
import Subprocess
import Synchronization

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A plug-in's process, spoken to in JSON lines: one request line on its stdin, one reply line from its stdout.
///
/// The process runs under swift-subprocess in a session task the connection owns, started by ``start()`` and
/// ended (stdin closed, then the process group stopped if it lingers) when the connection goes away. Requests
/// reach that task through a stream and are answered in order; a reply that does not come within the timeout, or
/// a process that exits, fails the request with the tail of the plug-in's stderr. Nothing blocks a thread while
/// the plug-in thinks.
actor PluginConnection {
    private struct Request: Sendable {
        var line: Data
        var name: String
        var reply: CheckedContinuation<Result<String, StrategyError>, Never>
    }

    private let command: [String]
    private let timeout: Duration
    private let label: String
    private let errorLog: URL
    private var requests: AsyncStream<Request>.Continuation?
    private var session: Task<Void, Never>?
    /// Set once the process has ended: how (`exit status 3`), or why it never started.
    private let ended = Locked<String?>(nil)

    /// A connection to the plug-in `command` (an argv, the program looked up on `PATH`), not yet started.
    init(command: [String], timeout: Duration, label: String) {
        self.command = command
        self.timeout = timeout
        self.label = label
        errorLog = FileManager.default.temporaryDirectory.appendingPathComponent(
            "autotune-plugin-\(UUID().uuidString).log")
    }

    deinit {
        requests?.finish()
        session?.cancel()
    }

    /// Starts the plug-in's process; fails when it cannot be started.
    func start() async throws {
        guard session == nil else { return }
        // The plug-in's stderr goes to a file that is unlinked as soon as the child holds it and this process
        // has it open for reading: nothing is left in the temporary directory however autotune ends.
        _ = FileManager.default.createFile(atPath: errorLog.path, contents: nil)
        let errorDescriptor = try FileDescriptor.open(FilePath(errorLog.path), .writeOnly)
        let reader = try FileHandle(forReadingFrom: errorLog)
        try? FileManager.default.removeItem(at: errorLog)
        self.errorReader = reader
        let (stream, continuation) = AsyncStream.makeStream(of: Request.self)
        requests = continuation
        var options = PlatformOptions()
        // A process group of its own: a Ctrl-C at the terminal reaches autotune (which drains and checkpoints
        // through this plug-in), not the plug-in.
        options.processGroupID = 0
        options.teardownSequence = [.gracefulShutDown(allowedDurationToNextStep: .seconds(2))]
        let program = command[0]
        let executable: Executable = program.contains("/") ? .path(FilePath(program)) : .name(program)
        let arguments = Arguments(Array(command.dropFirst()))
        let started = AsyncStream.makeStream(of: String?.self)
        let ended = self.ended
        let timeout = self.timeout
        session = Task {
            do {
                let result = try await Subprocess.run(
                    executable, arguments: arguments, platformOptions: options, input: .inputWriter,
                    output: .sequence, error: .fileDescriptor(errorDescriptor, closeAfterSpawningProcess: true)
                ) { execution in
                    started.continuation.yield(nil)
                    started.continuation.finish()
                    try await Self.serve(stream, execution: execution, timeout: timeout, ended: ended)
                }
                ended.withLock { $0 = "\(result.terminationStatus)" }
            } catch {
                ended.withLock { $0 = "could not be started: \(error)" }
                started.continuation.yield("\(error)")
                started.continuation.finish()
            }
            // Requests that arrive after the end are answered at once.
            for await request in stream {
                request.reply.resume(returning: .failure(StrategyError("exited")))
            }
        }
        for await failure in started.stream {
            if let failure { throw StrategyError("cannot start plug-in '\(label)': \(failure)") }
            break
        }
    }

    private var errorReader: FileHandle?

    /// Answers requests in order until the stream ends, then closes the plug-in's stdin.
    private static func serve(
        _ requests: AsyncStream<Request>,
        execution: Execution<CustomWriteInput, SequenceOutput, FileDescriptorOutput>,
        timeout: Duration,
        ended: Locked<String?>
    ) async throws {
        let lines = LineMailbox()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    for try await line in execution.standardOutput.strings(separatedBy: .lineBreaks) {
                        lines.deliver(line)
                    }
                } catch {}
                lines.close()
            }
            for await request in requests {
                do {
                    _ = try await execution.standardInputWriter.write(Array(request.line))
                } catch {
                    request.reply.resume(returning: .failure(StrategyError("could not be written to")))
                    continue
                }
                switch await lines.next(within: timeout) {
                case .line(let line): request.reply.resume(returning: .success(line))
                case .closed: request.reply.resume(returning: .failure(StrategyError("exited before answering")))
                case .timedOut:
                    request.reply.resume(returning: .failure(StrategyError("did not answer")))
                }
            }
            try? await execution.standardInputWriter.finish()
            // A plug-in ends when its stdin closes; one that lingers is stopped with its group.
            let lingering = Task {
                try await Task.sleep(for: .seconds(2))
                try? execution.send(signal: .kill, toProcessGroup: true)
            }
            try await group.waitForAll()
            lingering.cancel()
        }
    }

    /// Sends one request and returns the plug-in's reply, a JSON object; a reply that is not one, or that says
    /// `error`, fails.
    func request(_ message: [String: JSONValue]) async throws -> JSONValue {
        guard let requests else { throw failure("was not started") }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var line = try encoder.encode(JSONValue.object(message))
        line.append(0x0A)
        let name = message["type"]?.stringValue ?? "request"
        let result = await withCheckedContinuation { continuation in
            if case .terminated = requests.yield(Request(line: line, name: name, reply: continuation)) {
                continuation.resume(returning: .failure(StrategyError("exited")))
            }
        }
        let reply: String
        switch result {
        case .success(let text): reply = text
        case .failure(let error):
            switch error.message {
            case "did not answer":
                throw failure("did not answer '\(name)' within \(Int(timeout.components.seconds)) s")
            case "exited before answering", "exited":
                // The session notes how the process ended once it is reaped; give it a moment to.
                try? await Task.sleep(for: .milliseconds(100))
                throw failure("exited before answering '\(name)' (\(ended.withLock { $0 } ?? "still running"))")
            default:
                throw failure("\(error.message) (\(ended.withLock { $0 } ?? "still running"))")
            }
        }
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(reply.utf8)), case .object = value
        else {
            throw failure("answered with a line that is not a JSON object: \(String(reply.prefix(200)))")
        }
        if let error = value["error"]?.stringValue { throw failure("reported an error: \(error)") }
        return value
    }

    /// An error naming the plug-in, with the last lines of its stderr.
    private func failure(_ what: String) -> StrategyError {
        var text = ""
        if let errorReader {
            let size = (try? errorReader.seekToEnd()) ?? 0
            try? errorReader.seek(toOffset: size > 65536 ? size - 65536 : 0)
            text = String(decoding: (try? errorReader.readToEnd()) ?? Data(), as: UTF8.self)
        }
        let tail = text.split(whereSeparator: \.isNewline).suffix(10)
        return StrategyError(
            "plug-in '\(label)' \(what)" + (tail.isEmpty ? "" : "; its stderr:\n" + tail.joined(separator: "\n")))
    }
}

/// The plug-in's stdout lines as they arrive, handed to the one request waiting for its reply.
final class LineMailbox: Sendable {
    enum Next: Sendable {
        case line(String)
        case closed
        case timedOut
    }

    private struct State {
        var lines: [String] = []
        var closed = false
        var waiter: CheckedContinuation<Next, Never>?
    }

    private let state = Mutex(State())

    func deliver(_ line: String) {
        let waiter = state.withLock { state -> CheckedContinuation<Next, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.lines.append(line)
            return nil
        }
        waiter?.resume(returning: .line(line))
    }

    func close() {
        let waiter = state.withLock { state -> CheckedContinuation<Next, Never>? in
            state.closed = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: .closed)
    }

    /// The next line, `.closed` once stdout ended, or `.timedOut` after `limit`.
    func next(within limit: Duration) async -> Next {
        let timer = Task {
            try await Task.sleep(for: limit)
            self.expire()
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Next? in
                if !state.lines.isEmpty { return .line(state.lines.removeFirst()) }
                if state.closed { return .closed }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    private func expire() {
        let waiter = state.withLock { state -> CheckedContinuation<Next, Never>? in
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: .timedOut)
    }
}
