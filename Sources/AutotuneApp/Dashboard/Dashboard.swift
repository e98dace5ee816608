public import Autotune
import AutotuneReport
public import Foundation
public import Hummingbird
public import Logging

/// The live dashboard: the database's studies as web pages, read from the store on every request.
public enum Dashboard {
    /// The dashboard's routes over `store`: `/` (the studies), `/studies` (their table, polled), a study's page
    /// and fragment, its version (long-polled), a trial's page, and a trial's files under
    /// `/study/NAME/trial/N/file/FILE`. A study, trial or file that is not there is a 404.
    public static func buildRouter(
        store: any StudyStore, trialsDirectory: URL, databaseName: String
    ) -> Router<BasicRequestContext> {
        let pages = DashboardPages(store: store, trialsDirectory: trialsDirectory, databaseName: databaseName)
        let router = Router()
        router.get("/") { _, _ in try await pages.html { try await pages.studies() } }
        router.get("/studies") { _, _ in try await pages.html { try await pages.studiesFragment() } }
        router.get("/study/:name") { _, context in
            let name = try context.parameters.require("name")
            return try await pages.html { try await pages.study(name) }
        }
        router.get("/study/:name/fragment") { _, context in
            let name = try context.parameters.require("name")
            return try await pages.html { try await pages.studyFragment(name) }
        }
        router.get("/study/:name/version") { request, context in
            let name = try context.parameters.require("name")
            let wait = request.uri.queryParameters.get("wait").flatMap(Double.init) ?? 20
            return try await pages.version(
                name, after: request.uri.queryParameters.get("after"), wait: min(max(wait, 0.25), 25))
        }
        router.get("/compare") { request, _ in
            try await pages.html { try await pages.compare(request.uri.queryParameters.getAll("study")) }
        }
        router.get("/study/:name/trial/:number") { _, context in
            let name = try context.parameters.require("name")
            let number = try context.parameters.require("number", as: Int.self)
            return try await pages.html { try await pages.trial(name, number: number) }
        }
        router.get("/study/:name/trial/:number/file/:file") { _, context in
            let name = try context.parameters.require("name")
            let number = try context.parameters.require("number", as: Int.self)
            let file = try context.parameters.require("file")
            return try await pages.file(name, number: number, file: file)
        }
        return router
    }

    /// Serves the dashboard of `store` on `host:port` until the task is cancelled; `listening` is called with the
    /// bound port once requests are accepted (the one the system chose when `port` is 0).
    public static func serve(
        store: any StudyStore, trialsDirectory: URL, databaseName: String, host: String, port: Int, logger: Logger,
        listening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws {
        let app = Application(
            router: buildRouter(store: store, trialsDirectory: trialsDirectory, databaseName: databaseName),
            configuration: .init(address: .hostname(host, port: port), serverName: "autotune-dashboard"),
            onServerRunning: { channel in await listening(channel.localAddress?.port ?? port) },
            logger: logger)
        try await app.runService()
    }
}

/// The dashboard's pages, read from the store on every request (so they are as fresh as the database).
struct DashboardPages: Sendable {
    let store: any StudyStore
    let trialsDirectory: URL
    let databaseName: String

    /// A page as a response; a study or trial that is not there is a 404.
    func html(_ body: () async throws -> String) async throws -> Response {
        do {
            let text = try await body()
            var headers = HTTPFields()
            headers[.contentType] = "text/html; charset=utf-8"
            headers[.cacheControl] = "no-store"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
        } catch let error as AutotuneError where error.code == .notFound || error.code == .studyNotFound {
            return Response(
                status: .notFound, body: .init(byteBuffer: ByteBuffer(string: "<p>\(HTML.escape(error.message))</p>")))
        } catch let error as AutotuneError where error.code == .invalidArgument {
            // Studies that cannot be compared (their objectives differ): the page says why.
            return Response(
                status: .badRequest, body: .init(byteBuffer: ByteBuffer(string: "<p>\(HTML.escape(error.message))</p>"))
            )
        }
    }

    func studies() async throws -> String {
        """
        <!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Autotune — \(HTML.escape(databaseName))</title>
        <style>\(StudyReport.style)</style></head><body>
        <h1>Studies</h1><p class="meta">\(HTML.escape(databaseName)), read-only; refreshed every 2 s</p>
        <form action="/compare" method="get"><div id="studies">\(try await studiesFragment())</div>
        <p><button type="submit">Compare the studies ticked</button></p></form>
        <script>setInterval(function(){fetch('/studies',{cache:'no-store'}).then(function(r){return r.text();})
        .then(function(t){var ticked=Array.prototype.map.call(document.querySelectorAll('#studies input:checked'),function(e){return e.value;});
        document.getElementById('studies').innerHTML=t;document.querySelectorAll('#studies input').forEach(function(e){
        if(ticked.indexOf(e.value)>=0){e.checked=true;}});}).catch(function(){});},2000);</script>
        </body></html>
        """
    }

    func studiesFragment() async throws -> String {
        var html =
            "<table class=\"trials\"><thead><tr><th>compare</th><th>study</th><th>status</th><th>trials</th><th>completed</th><th>failed</th><th>best</th><th>updated</th></tr></thead><tbody>"
        for study in try await store.studies() {
            let row = StudyStatusRow(study: study, trials: try await store.trials(ofStudy: study.id))
            html += "<tr><td><input type=\"checkbox\" name=\"study\" value=\"\(HTML.escape(row.name))\"></td>"
            html += "<td><a href=\"/study/\(Self.pathComponent(row.name))\">\(HTML.escape(row.name))</a></td>"
            html += "<td>\(HTML.escape(row.status))</td><td>\(row.trials)</td>"
            html += "<td>\(row.completed)</td><td>\(row.failed)</td>"
            html += "<td>\(row.best == nil ? "" : HTML.escape(row.bestText))</td>"
            html += "<td>\(HTML.escape(row.updatedAt.formatted(.iso8601)))</td></tr>"
        }
        return html + "</tbody></table>"
    }

    private func input(_ name: String) async throws -> ReportInput {
        guard let study = try await store.study(named: name) else {
            throw AutotuneError(.notFound, "no study named '\(name)'")
        }
        let trials = try await store.trials(ofStudy: study.id)
        let path = Self.pathComponent(name)
        return ReportInput(
            study: study, trials: trials, trialsDirectory: trialsDirectory, result: await study.result(trials: trials),
            trialLink: { "/study/\(path)/trial/\($0)" })
    }

    func study(_ name: String) async throws -> String {
        let path = Self.pathComponent(name)
        // Long-polls the study's version: the server answers as soon as it moves (a trial started or finished,
        // in this process or another), then the sections are fetched and re-rendered in place, keeping the
        // filter. The page records the server's clock at the update, so a test can tell how fresh it was.
        let script = """
            var autotuneVersion=null;var autotuneWait=new URLSearchParams(location.search).get('wait')||'20';
            function autotuneShow(v,at){document.body.setAttribute('data-version',v);document.body.setAttribute('data-updated-at',at);}
            function autotunePoll(){var url='/study/\(path)/version?wait='+autotuneWait+(autotuneVersion===null?'':'&after='+encodeURIComponent(autotuneVersion));
            fetch(url,{cache:'no-store'}).then(function(r){return r.text();}).then(function(text){
            var parts=text.split('\\n');var v=parts[0];
            if(autotuneVersion!==null&&v!==autotuneVersion){
            return fetch('/study/\(path)/fragment',{cache:'no-store'}).then(function(r){return r.text();})
            .then(function(t){var box=document.getElementById('filter');var filter=box?box.value:'';
            document.getElementById('report').innerHTML=t;autotuneTables();var again=document.getElementById('filter');
            if(again&&filter){again.value=filter;again.oninput();}autotuneVersion=v;autotuneShow(v,parts[1]);autotunePoll();});}
            var first=autotuneVersion===null;autotuneVersion=v;if(first){autotuneShow(v,parts[1]);}
            setTimeout(autotunePoll,first?0:500);}).catch(function(){setTimeout(autotunePoll,1000);});}
            autotunePoll();
            """
        let head = "<p><a href=\"/\">← studies</a></p>"
        return StudyReport.html(try await input(name), head: "", script: script)
            .replacingOccurrences(of: "<div id=\"report\">", with: head + "<div id=\"report\">")
    }

    /// Two or more studies side by side (`/compare?study=a&study=b`): ``StudyComparison``'s page, its study
    /// names linked to their pages.
    func compare(_ names: [String]) async throws -> String {
        guard names.count >= 2 else {
            throw AutotuneError(.invalidArgument, "compare needs two or more studies: tick them on the studies page")
        }
        var studies: [StoredStudy] = []
        for name in names {
            guard let study = try await store.study(named: name) else {
                throw AutotuneError(.notFound, "no study named '\(name)'")
            }
            studies.append(study)
        }
        let (comparison, charts) = try await StudyComparison.loading(studies, from: store)
        return comparison.html(charts) { "/study/\(Self.pathComponent($0))" }
            .replacingOccurrences(
                of: "<div id=\"report\">", with: "<p><a href=\"/\">← studies</a></p><div id=\"report\">")
    }

    func studyFragment(_ name: String) async throws -> String {
        StudyReport.sections(try await input(name))
    }

    /// What changes when a trial starts or finishes (its trial and finished counts, its status) and the
    /// server's clock, on two lines. With `after`, waits (up to `wait` seconds, looking every 250 ms) until the
    /// version differs from it: a long poll, so a page hears of a finished trial within a quarter of a second.
    func version(_ name: String, after: String?, wait: Double) async throws -> Response {
        let deadline = ContinuousClock.now + .milliseconds(Int(wait * 1000))
        var version = try await currentVersion(name)
        while let after, version == after, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(250))
            version = try await currentVersion(name)
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        headers[.cacheControl] = "no-store"
        let text = "\(version)\n\(Date().timeIntervalSince1970)"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    private func currentVersion(_ name: String) async throws -> String {
        guard let study = try await store.study(named: name) else { return "gone" }
        let trials = try await store.trials(ofStudy: study.id)
        return "\(trials.count)-\(trials.filter(\.isFinished).count)-\(study.status.rawValue)"
    }

    func trial(_ name: String, number: Int) async throws -> String {
        guard let study = try await store.study(named: name),
            let trial = try await store.trials(ofStudy: study.id).first(where: { $0.number == number })
        else { throw AutotuneError(.notFound, "no trial \(number) in study '\(name)'") }
        var html = """
            <!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>\(HTML.escape(name)) #\(number)</title>
            <style>\(StudyReport.style)</style></head><body>
            <p><a href="/study/\(Self.pathComponent(name))">← \(HTML.escape(name))</a></p>
            <h1>Trial \(number)</h1><p class="meta">\(trial.state.rawValue), attempt \(trial.attempt)\(trial.score.map { ", score \(HumanNumber.format($0))" } ?? "")</p>
            """
        func table(_ title: String, _ rows: [(String, String)]) {
            guard !rows.isEmpty else { return }
            html += "<h2>\(title)</h2><table class=\"config\">"
            for (key, value) in rows { html += "<tr><th>\(HTML.escape(key))</th><td>\(HTML.escape(value))</td></tr>" }
            html += "</table>"
        }
        table(
            "Configuration",
            study.definition.space.parameters.compactMap { parameter in
                trial.configuration[parameter.name].map { (parameter.name, parameter.display($0)) }
            })
        let directory = trialDirectory(name, number)
        let sample = RequestSample.read(
            benchmarkFile: directory.appendingPathComponent("benchmark.json").path, trial: number)
        html += TrialFigures.html(trial.metrics, sample: sample)
        table("Timings (s)", trial.timings.sorted { $0.key < $1.key }.map { ($0.key, HumanNumber.format($0.value)) })
        var placement: [(String, String)] = []
        if let gpus = trial.gpus { placement.append(("gpus", gpus.map(String.init).joined(separator: ","))) }
        if let port = trial.port { placement.append(("port", String(port))) }
        if let host = trial.host { placement.append(("node", host)) }
        table("Placement", placement)
        if let error = trial.error {
            html += "<h2>Error</h2><pre class=\"command\">\(HTML.escape(error.description))</pre>"
        }
        if let command = try? study.definition.launchCommand(for: trial, trialsDirectory: trialsDirectory) {
            html += "<h2>Command</h2><pre class=\"command\">\(HTML.escape(ShellWords.join(command)))</pre>"
        }
        if let sample {
            let input = ReportInput(study: study, trials: [trial])
            html += "<div id=\"report\">\(StudyReport.trialServing(input, sample: sample))</div>"
        }
        let files = Self.files(directory: directory)
        if !files.isEmpty {
            html += "<h2>Files</h2><table class=\"config files\">"
            for (file, size, _) in files {
                let link = "/study/\(Self.pathComponent(name))/trial/\(number)/file/\(Self.pathComponent(file))"
                html +=
                    "<tr><td><a href=\"\(HTML.escape(link))\">\(HTML.escape(file))</a></td><td>\(Self.size(size))</td></tr>"
            }
            html += "</table>"
        }
        // Logs as their last lines; a result file (JSON) is a link above, not a wall of numbers.
        for (file, tail) in Self.tails(of: files.filter { !$0.name.hasSuffix(".json") }) {
            html += "<h2>\(HTML.escape(file)) (last lines)</h2><pre class=\"command\">\(HTML.escape(tail))</pre>"
        }
        return html + "</body></html>"
    }

    /// A file of the trial's directory as it is (`benchmark.json`, a log), named by the request: only a regular file
    /// directly in the directory, no link leading out of it, and no name with a path in it.
    func file(_ name: String, number: Int, file: String) async throws -> Response {
        guard try await store.study(named: name) != nil else {
            return Self.notFound("no study named '\(name)'")
        }
        let directory = trialDirectory(name, number)
        guard !file.isEmpty, !file.contains("/"), file != ".", file != "..",
            let resolved = Self.regularFile(named: file, in: directory),
            let data = FileManager.default.contents(atPath: resolved.path)
        else { return Self.notFound("trial \(number) of '\(name)' has no file '\(file)'") }
        var headers = HTTPFields()
        headers[.contentType] = file.hasSuffix(".json") ? "application/json" : "text/plain; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    private static func notFound(_ message: String) -> Response {
        Response(status: .notFound, body: .init(byteBuffer: ByteBuffer(string: "<p>\(HTML.escape(message))</p>")))
    }

    /// `name` in `directory` when it is a regular file there once links are resolved.
    static func regularFile(named name: String, in directory: URL) -> URL? {
        let root = directory.resolvingSymlinksInPath().path
        let resolved = directory.appendingPathComponent(name).resolvingSymlinksInPath()
        guard resolved.deletingLastPathComponent().path == root,
            let attributes = try? FileManager.default.attributesOfItem(atPath: resolved.path),
            attributes[.type] as? FileAttributeType == .typeRegular
        else { return nil }
        return resolved
    }

    /// The trial's directory: built from the study's name and the trial's number, never from a request path.
    private func trialDirectory(_ study: String, _ number: Int) -> URL {
        trialsDirectory.appendingPathComponent(study, isDirectory: true)
            .appendingPathComponent(String(number), isDirectory: true)
    }

    /// A file's size for a person: bytes, KiB or MiB.
    static func size(_ bytes: Int) -> String {
        if bytes < 1024 { return "\(bytes) B" }
        if bytes < 1024 * 1024 { return String(format: "%.1f KiB", Double(bytes) / 1024) }
        return String(format: "%.1f MiB", Double(bytes) / 1024 / 1024)
    }

    /// The regular files directly in `directory` (none that a link points out of it), by name, with their sizes
    /// and where they resolve.
    static func files(directory: URL) -> [(name: String, size: Int, url: URL)] {
        let manager = FileManager.default
        guard let names = try? manager.contentsOfDirectory(atPath: directory.path) else { return [] }
        return names.sorted().filter { !$0.hasPrefix(".") }.compactMap { name in
            guard let resolved = regularFile(named: name, in: directory),
                let attributes = try? manager.attributesOfItem(atPath: resolved.path)
            else { return nil }
            return (name, (attributes[.size] as? NSNumber)?.intValue ?? 0, resolved)
        }
    }

    /// The last 8 KiB of each of `files` (logs).
    static func tails(of files: [(name: String, size: Int, url: URL)]) -> [(String, String)] {
        files.compactMap { file in
            guard let handle = try? FileHandle(forReadingFrom: file.url) else { return nil }
            defer { try? handle.close() }
            try? handle.seek(toOffset: UInt64(max(0, file.size - 8192)))
            let data = (try? handle.readToEnd()) ?? Data()
            return (file.name, String(decoding: data, as: UTF8.self))
        }
    }

    static func pathComponent(_ name: String) -> String {
        name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/")))
            ?? name
    }
}
