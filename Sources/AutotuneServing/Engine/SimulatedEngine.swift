public import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// An OpenAI-compatible server whose speed follows vLLM-like flags through a real scheduler loop.
///
/// It serves `GET /health`, `GET /v1/models`, `POST /v1/completions` and `POST /v1/chat/completions` (streamed
/// as server-sent events, or whole), one token per decode step of an ``EngineScheduler``, sleeping each step's
/// simulated duration times `timeScale`. Its tokenizer is words: a prompt's length is its whitespace-separated
/// words, which `POST /tokenize` reports as vLLM's does. Like vLLM it refuses a prompt and answer longer than
/// `--max-model-len` (400) and a model it does not serve (404). With `--enable-prefix-caching` a prompt whose
/// leading blocks of words were prefilled before skips them. `GET /stats` reports the engine's own counters
/// (requests, tokens, the simulated seconds its steps took, the largest batch, prefix-cache hits), which no load
/// on the host moves. It is the quickstart's target and the tests' target, so the whole tuning pipeline runs on a
/// machine without GPUs.
public actor SimulatedEngine {
    /// A token or the end, sent to the request's stream.
    enum Event: Sendable {
        case token
        case finished
    }

    private var scheduler: EngineScheduler
    private let timeScale: Double
    private var streams: [Int: AsyncStream<Event>.Continuation] = [:]
    private var nextID = 0
    private var wake: AsyncStream<Void>.Continuation?
    private var counters = Counters()

    /// What the engine did, on its own clock.
    struct Counters: Sendable, Encodable {
        var received = 0
        var completed = 0
        var generatedTokens = 0
        var promptTokens = 0
        var engineSeconds = 0.0
        var largestBatch = 0
        var steps = 0
    }

    /// Where the counters are written each time the engine goes idle after work (`--stats-file`).
    private let statsFile: URL?

    /// Creates an engine; `timeScale` shortens every simulated step (0.25 runs four times faster than the
    /// simulated GPU would); `statsFile` receives ``statsJSON()`` whenever the engine runs out of work, so what
    /// it did outlives the process (a trial's server is stopped before anyone could ask `GET /stats`).
    public init(settings: EngineSettings, timeScale: Double = 1, statsFile: URL? = nil) {
        scheduler = EngineScheduler(settings: settings)
        self.timeScale = timeScale
        self.statsFile = statsFile
    }

    /// Preemptions so far.
    public var preemptions: Int { scheduler.preemptions }

    /// Queues a request and returns its token stream.
    func submit(promptTokens: Int, maxTokens: Int, blockHashes: [UInt64] = []) -> (Int, AsyncStream<Event>) {
        let id = nextID
        nextID += 1
        let (stream, continuation) = AsyncStream.makeStream(of: Event.self)
        streams[id] = continuation
        scheduler.submit(id: id, promptTokens: promptTokens, maxTokens: maxTokens, blockHashes: blockHashes)
        counters.received += 1
        counters.promptTokens += promptTokens
        wake?.yield()
        return (id, stream)
    }

    /// The settings the engine runs with.
    var settings: EngineSettings { scheduler.settings }

    /// The counters as JSON, with the prefix cache's figures: what `GET /stats` serves.
    public func statsJSON() -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        var text = String(decoding: (try? encoder.encode(counters)) ?? Data("{}".utf8), as: UTF8.self)
        text.removeLast()
        return text
            + #","cached_prompt_tokens":\#(scheduler.cachedPromptTokens),"computed_prompt_tokens":\#(scheduler.computedPromptTokens),"preemptions":\#(scheduler.preemptions)}"#
    }

    /// Drops a request whose client went away.
    func cancel(_ id: Int) {
        scheduler.cancel(id: id)
        streams.removeValue(forKey: id)?.finish()
    }

    /// Steps the scheduler until the task is cancelled, idling while there is no request.
    public func run() async {
        // A wake-up stream rather than a stored continuation: its iterator returns nil on cancellation, so an
        // idle engine stops without anyone resuming it.
        let (signals, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        wake = continuation
        var iterator = signals.makeAsyncIterator()
        var worked = false
        while !Task.isCancelled {
            if scheduler.isIdle {
                if worked, let statsFile {
                    try? Data(statsJSON().utf8).write(to: statsFile, options: .atomic)
                }
                worked = false
                guard await iterator.next() != nil else { return }
                continue
            }
            worked = true
            let step = scheduler.step()
            counters.steps += 1
            counters.engineSeconds += step.seconds
            counters.largestBatch = max(counters.largestBatch, step.decodes)
            counters.generatedTokens += step.tokens.count
            try? await Task.sleep(for: .nanoseconds(Int64(step.seconds * timeScale * 1e9)))
            for (id, finished) in step.tokens {
                streams[id]?.yield(.token)
                if finished {
                    counters.completed += 1
                    streams[id]?.yield(.finished)
                    streams.removeValue(forKey: id)?.finish()
                }
            }
        }
    }
}

/// The HTTP front of a ``SimulatedEngine``.
public enum SimulatedEngineServer {
    /// Serves `engine` on `host:port` until the task is cancelled. Binds only after `loadSeconds`, like a real
    /// engine loading its weights, so readiness probes see connection refusals first.
    ///
    /// With `requestLog`, every completion request's body is appended to that file as one line, as received: what
    /// tests of the load generator read back. `listening` is called with the bound port once connections are
    /// accepted, which is how a caller that passed port 0 (any free port) learns which one it got.
    public static func serve(
        engine: SimulatedEngine,
        model: String,
        host: String = "127.0.0.1",
        port: Int,
        loadSeconds: Double = 0,
        requestLog: URL? = nil,
        listening: @Sendable (Int) -> Void = { _ in }
    ) async throws {
        let log = requestLog.flatMap { url -> FileHandle? in
            _ = FileManager.default.createFile(atPath: url.path, contents: nil)
            return try? FileHandle(forWritingTo: url)
        }
        let logger = log.map { RequestLog(handle: $0) }
        if loadSeconds > 0 { try await Task.sleep(for: .milliseconds(Int(loadSeconds * 1000))) }
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(
                        wrappingChannelSynchronously: channel
                    )
                }
            }
        listening(server.channel.localAddress?.port ?? port)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await engine.run() }
            try await server.executeThenClose { connections in
                for try await connection in connections {
                    group.addTask {
                        try? await handle(connection, engine: engine, model: model, log: logger)
                    }
                }
            }
        }
    }

    private static func handle(
        _ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>,
        engine: SimulatedEngine,
        model: String,
        log: RequestLog?
    ) async throws {
        try await connection.executeThenClose { inbound, outbound in
            var head: HTTPRequestHead?
            var body = ByteBuffer()
            for try await part in inbound {
                switch part {
                case .head(let requestHead):
                    head = requestHead
                    body.clear()
                case .body(var chunk):
                    body.writeBuffer(&chunk)
                case .end:
                    guard let request = head else { continue }
                    if let log, request.method == .POST, request.uri.hasPrefix("/v1/") { log.append(body) }
                    try await respond(to: request, body: body, outbound: outbound, engine: engine, model: model)
                    head = nil
                }
            }
        }
    }

    private static func respond(
        to head: HTTPRequestHead,
        body: ByteBuffer,
        outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>,
        engine: SimulatedEngine,
        model: String
    ) async throws {
        let path = head.uri.split(separator: "?").first.map(String.init) ?? head.uri
        switch (head.method, path) {
        case (.GET, "/health"):
            try await send(outbound, status: .ok, json: "{}")
        case (.GET, "/v1/models"):
            try await send(
                outbound, status: .ok, json: #"{"object":"list","data":[{"id":"\#(model)","object":"model"}]}"#)
        case (.GET, "/stats"):
            try await send(outbound, status: .ok, json: await engine.statsJSON())
        case (.POST, "/tokenize"):
            guard let request = try? JSONDecoder().decode(CompletionRequest.self, from: Data(body.readableBytesView))
            else {
                try await send(outbound, status: .badRequest, json: #"{"error":{"message":"invalid JSON body"}}"#)
                return
            }
            let count = request.promptTokens
            let limit = await engine.settings.maxModelLength
            try await send(
                outbound, status: .ok,
                json:
                    #"{"count":\#(count),"max_model_len":\#(limit),"tokens":[\#((0..<count).map { _ in "1" }.joined(separator: ","))]}"#
            )
        case (.POST, "/v1/completions"), (.POST, "/v1/chat/completions"):
            let chat = path.hasSuffix("chat/completions")
            guard let request = try? JSONDecoder().decode(CompletionRequest.self, from: Data(body.readableBytesView))
            else {
                try await send(outbound, status: .badRequest, json: #"{"error":{"message":"invalid JSON body"}}"#)
                return
            }
            // As vLLM: a model it does not serve is a 404, a request longer than its context a 400.
            if let asked = request.model, asked != model {
                try await send(
                    outbound, status: .notFound,
                    json:
                        #"{"object":"error","message":"The model `\#(asked)` does not exist.","type":"NotFoundError","param":null,"code":404}"#
                )
                return
            }
            let limit = await engine.settings.maxModelLength
            let wanted = request.promptTokens + (request.max_tokens ?? 16)
            if wanted > limit {
                try await send(
                    outbound, status: .badRequest,
                    json:
                        #"{"object":"error","message":"This model's maximum context length is \#(limit) tokens. However, you requested \#(wanted) tokens (\#(request.promptTokens) in the messages, \#(request.max_tokens ?? 16) in the completion). Please reduce the length of the messages or completion.","type":"BadRequestError","param":null,"code":400}"#
                )
                return
            }
            try await complete(request, chat: chat, outbound: outbound, engine: engine, model: model)
        default:
            try await send(outbound, status: .notFound, json: #"{"error":{"message":"not found"}}"#)
        }
    }

    struct CompletionRequest: Decodable {
        struct Message: Decodable { var content: String }
        struct StreamOptions: Decodable { var include_usage: Bool? }
        var model: String?
        var prompt: String?
        var content: String?
        var messages: [Message]?
        var max_tokens: Int?
        var stream: Bool?
        var stream_options: StreamOptions?

        /// The prompt's words: the engine's tokens.
        var words: [Substring] {
            let text = prompt ?? content ?? messages?.map(\.content).joined(separator: " ") ?? ""
            return text.split(whereSeparator: \.isWhitespace)
        }

        var promptTokens: Int { words.count }

        /// The hashes of the prompt's full blocks of `blockSize` words, each chained to the ones before.
        func blockHashes(blockSize: Int) -> [UInt64] {
            let words = words
            var hashes: [UInt64] = []
            var hash: UInt64 = 14_695_981_039_346_656_037
            var start = 0
            while start + blockSize <= words.count {
                for word in words[start..<(start + blockSize)] {
                    for byte in word.utf8 { hash = (hash ^ UInt64(byte)) &* 1_099_511_628_211 }
                    hash = (hash ^ 0x20) &* 1_099_511_628_211
                }
                hashes.append(hash)
                start += blockSize
            }
            return hashes
        }
    }

    private static func complete(
        _ request: CompletionRequest,
        chat: Bool,
        outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>,
        engine: SimulatedEngine,
        model: String
    ) async throws {
        let promptTokens = request.promptTokens
        let maxTokens = request.max_tokens ?? 16
        let settings = await engine.settings
        let hashes = settings.enablePrefixCaching ? request.blockHashes(blockSize: settings.blockSize) : []
        let (id, events) = await engine.submit(promptTokens: promptTokens, maxTokens: maxTokens, blockHashes: hashes)
        let object = chat ? "chat.completion" : "text_completion"
        let created = Int(Date().timeIntervalSince1970)
        func choice(_ text: String, finish: String?) -> String {
            let reason = finish.map { #""\#($0)""# } ?? "null"
            return chat
                ? #"{"index":0,"delta":{"content":"\#(text)"},"finish_reason":\#(reason)}"#
                : #"{"index":0,"text":"\#(text)","finish_reason":\#(reason)}"#
        }
        var generated = 0
        if request.stream == true {
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "text/event-stream")
            try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)))
            do {
                for await event in events {
                    guard case .token = event else { continue }
                    generated += 1
                    let finish = generated >= maxTokens ? "length" : nil
                    let chunk =
                        #"{"id":"cmpl-\#(id)","object":"\#(object).chunk","created":\#(created),"model":"\#(model)","choices":[\#(choice("tok\(generated) ", finish: finish))]}"#
                    try await outbound.write(.body(.byteBuffer(ByteBuffer(string: "data: \(chunk)\n\n"))))
                }
            } catch {
                await engine.cancel(id)
                throw error
            }
            if request.stream_options?.include_usage == true {
                let usage =
                    #"{"id":"cmpl-\#(id)","object":"\#(object).chunk","created":\#(created),"model":"\#(model)","choices":[],"usage":{"prompt_tokens":\#(promptTokens),"completion_tokens":\#(generated),"total_tokens":\#(promptTokens + generated)}}"#
                try await outbound.write(.body(.byteBuffer(ByteBuffer(string: "data: \(usage)\n\n"))))
            }
            try await outbound.write(.body(.byteBuffer(ByteBuffer(string: "data: [DONE]\n\n"))))
            try await outbound.write(.end(nil))
        } else {
            for await event in events where event == .token { generated += 1 }
            let text = (1...max(1, generated)).map { "tok\($0)" }.joined(separator: " ")
            let message =
                chat
                ? #"{"index":0,"message":{"role":"assistant","content":"\#(text)"},"finish_reason":"length"}"#
                : #"{"index":0,"text":"\#(text)","finish_reason":"length"}"#
            let json =
                #"{"id":"cmpl-\#(id)","object":"\#(object)","created":\#(created),"model":"\#(model)","choices":[\#(message)],"usage":{"prompt_tokens":\#(promptTokens),"completion_tokens":\#(generated),"total_tokens":\#(promptTokens + generated)}}"#
            try await send(outbound, status: .ok, json: json)
        }
    }

    private static func send(
        _ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>,
        status: HTTPResponseStatus,
        json: String
    ) async throws {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "content-length", value: String(json.utf8.count))
        try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)))
        try await outbound.write(.body(.byteBuffer(ByteBuffer(string: json))))
        try await outbound.write(.end(nil))
    }
}

extension SimulatedEngine.Event: Equatable {}

/// The request bodies a simulated engine received, one line each, appended under a lock.
final class RequestLog: @unchecked Sendable {
    // A lock, not an actor: lines are appended from the connections' tasks and must not interleave.
    private let lock = NSLock()
    private let handle: FileHandle

    init(handle: FileHandle) { self.handle = handle }

    func append(_ body: ByteBuffer) {
        var line = Data(body.readableBytesView)
        line.removeAll { $0 == 0x0A }
        line.append(0x0A)
        lock.lock()
        defer { lock.unlock() }
        try? handle.write(contentsOf: line)
    }
}
