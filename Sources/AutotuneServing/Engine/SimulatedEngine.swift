import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// An OpenAI-compatible server whose speed follows vLLM-like flags through a real scheduler loop.
///
/// It serves `GET /health`, `GET /v1/models`, `POST /v1/completions` and `POST /v1/chat/completions` (streamed
/// as server-sent events, or whole), one token per decode step of an ``EngineScheduler``, sleeping each step's
/// simulated duration times `timeScale`. Prompt length is the number of whitespace-separated words. It is the
/// quickstart's target and the tests' target, so the whole tuning pipeline runs on a machine without GPUs.
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

    /// Creates an engine; `timeScale` shortens every simulated step (0.25 runs four times faster than the
    /// simulated GPU would).
    public init(settings: EngineSettings, timeScale: Double = 1) {
        scheduler = EngineScheduler(settings: settings)
        self.timeScale = timeScale
    }

    /// Preemptions so far.
    public var preemptions: Int { scheduler.preemptions }

    /// Queues a request and returns its token stream.
    func submit(promptTokens: Int, maxTokens: Int) -> (Int, AsyncStream<Event>) {
        let id = nextID
        nextID += 1
        let (stream, continuation) = AsyncStream.makeStream(of: Event.self)
        streams[id] = continuation
        scheduler.submit(id: id, promptTokens: promptTokens, maxTokens: maxTokens)
        wake?.yield()
        return (id, stream)
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
        while !Task.isCancelled {
            if scheduler.isIdle {
                guard await iterator.next() != nil else { return }
                continue
            }
            let step = scheduler.step()
            try? await Task.sleep(for: .nanoseconds(Int64(step.seconds * timeScale * 1e9)))
            for (id, finished) in step.tokens {
                streams[id]?.yield(.token)
                if finished {
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
    public static func serve(
        engine: SimulatedEngine,
        model: String,
        host: String = "127.0.0.1",
        port: Int,
        loadSeconds: Double = 0
    ) async throws {
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
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await engine.run() }
            try await server.executeThenClose { connections in
                for try await connection in connections {
                    group.addTask {
                        try? await handle(connection, engine: engine, model: model)
                    }
                }
            }
        }
    }

    private static func handle(
        _ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>,
        engine: SimulatedEngine,
        model: String
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
        case (.POST, "/v1/completions"), (.POST, "/v1/chat/completions"):
            let chat = path.hasSuffix("chat/completions")
            guard let request = try? JSONDecoder().decode(CompletionRequest.self, from: Data(body.readableBytesView))
            else {
                try await send(outbound, status: .badRequest, json: #"{"error":{"message":"invalid JSON body"}}"#)
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
        var prompt: String?
        var messages: [Message]?
        var max_tokens: Int?
        var stream: Bool?
        var stream_options: StreamOptions?

        var promptTokens: Int {
            let text = prompt ?? messages?.map(\.content).joined(separator: " ") ?? ""
            return text.split(whereSeparator: \.isWhitespace).count
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
        let (id, events) = await engine.submit(promptTokens: promptTokens, maxTokens: maxTokens)
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
