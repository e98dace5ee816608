import Foundation
import Testing

/// Debian's chromium, headless: the report and the dashboard as a real browser renders them.
let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first {
    FileManager.default.isExecutableFile(atPath: $0)
}

/// Loads `url` in headless chromium and returns the DOM after its scripts ran, and what the browser logged
/// (console errors included).
func render(
    _ url: String, virtualTime: Int = 2000, window: (Int, Int) = (1400, 900), in directory: URL
) throws -> (dom: String, log: String) {
    let browser = try #require(chromium, "chromium is not installed (scripts/install-deps installs it)")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: browser)
    process.arguments = [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--enable-logging=stderr", "--v=0",
        "--user-data-dir=\(directory.appendingPathComponent("chromium-\(UUID().uuidString)").path)",
        "--virtual-time-budget=\(virtualTime)", "--window-size=\(window.0),\(window.1)", "--dump-dom", url,
    ]
    let out = Pipe()
    let log = directory.appendingPathComponent("chromium-\(UUID().uuidString).log")
    _ = FileManager.default.createFile(atPath: log.path, contents: nil)
    let logHandle = try FileHandle(forWritingTo: log)
    defer { try? logHandle.close() }
    process.standardOutput = out
    process.standardError = logHandle
    try process.run()
    let dom = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    try? out.fileHandleForReading.close()
    return (dom, try String(contentsOf: log, encoding: .utf8))
}

/// The markers (`class="point …"`) inside the chart `name` of a rendered page.
func points(in dom: String, chart name: String) -> Int {
    guard let start = dom.range(of: "data-chart=\"\(name)\"") else { return -1 }
    let rest = dom[start.upperBound...]
    let end = rest.range(of: "</svg>")?.lowerBound ?? rest.endIndex
    return rest[..<end].components(separatedBy: "class=\"point").count - 1
}

/// JavaScript errors the browser reported.
func scriptErrors(_ log: String) -> [String] {
    log.split(separator: "\n").map(String.init).filter {
        $0.contains("Uncaught") || $0.contains("SyntaxError") || $0.contains("TypeError")
            || $0.contains("ReferenceError")
    }
}

@Suite(.serialized, .timeLimit(.minutes(5))) struct ReportTests {
    /// A real study's report opens offline in a browser, its scripts run without an error, and each chart has
    /// one marker per trial it draws; a study of two objectives adds the front.
    @Test func theReportOfARealStudyRendersEveryTrialInEveryChart() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let report = try await gridStudy(in: directory)
        let html = try String(contentsOf: report, encoding: .utf8)
        #expect(!html.contains("http://") && !html.contains("https://"), "the report must open offline")
        let (dom, log) = try render("file://\(directory.path)/rep.html", in: directory)
        #expect(dom.contains("data-ready=\"1\""), "the page's script did not run to its end")
        #expect(scriptErrors(log).isEmpty, "\(scriptErrors(log))")
        // Eight grid points (the baseline is one of them): seven completed or broke the SLO, one crashed.
        #expect(points(in: dom, chart: "history") == 8)
        // x = 4 has ttft 32 > 30: measured, infeasible, still on the Pareto chart; the crashed one is not.
        #expect(points(in: dom, chart: "pareto") == 7)
        #expect(dom.contains("class=\"point baseline\""))
        #expect(points(in: dom, chart: "parallel") == 5)  // the completed trials
        #expect(points(in: dom, chart: "slice-x") == 5)
        #expect(points(in: dom, chart: "timeline") == 8)
        #expect(dom.contains("exit status 3"), "failures are grouped with their cause")
        #expect(dom.contains("<td>#"), "the front's table lists its trials")
    }

    /// The dashboard shows a trial that a study running in another process just finished, within 2 s, in a real
    /// browser; it serves each trial's page with its logs, and nothing outside the trial directories.
    @Test func theDashboardShowsATrialAnotherProcessJustFinished() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        try """
        name: live
        parameters:
          x: [1, 2, 3, 4]
        objective: {maximize: score}
        strategy: grid
        experiment:
          command: [/bin/sh, -c, 'echo working on {x}; sleep 2; echo "{{\\"score\\": {x}}}"']
        """.write(to: directory.appendingPathComponent("t.yaml"), atomically: true, encoding: .utf8)
        let study = Process()
        study.executableURL = executable
        study.arguments = ["run", "t.yaml", "--quiet"]
        study.currentDirectoryURL = directory
        study.standardOutput = FileHandle.nullDevice
        study.standardError = FileHandle.nullDevice
        try study.run()
        defer {
            study.terminate()
            study.waitUntilExit()
        }
        // The study is recorded once its first trial has a directory; then the dashboard can open it. (The
        // database file alone is not enough: SQLite creates it empty a moment before it writes the schema.)
        while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("autotune-trials/live/0").path) {
            try await Task.sleep(for: .milliseconds(50))
        }
        let (dashboard, base) = try await startDashboard(in: directory)
        defer {
            dashboard.terminate()
            dashboard.waitUntilExit()
        }
        var ready = false
        for _ in 0..<200 where !ready {
            // Served, and the study still has trials to finish (the second field counts the finished ones).
            let version = (try? await fetch(base + "/study/live/version"))?.split(separator: "-") ?? []
            ready = version.count >= 3 && version[2].hasPrefix("running") && (Int(version[1]) ?? 9) < 2
            if !ready { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(ready, "the dashboard did not serve the running study")
        let opened = Date()
        // The page long-polls (a second per poll here): the dump comes once the study's trials are done.
        let (dom, log) = try render(base + "/study/live?wait=1", virtualTime: 4000, in: directory)
        #expect(scriptErrors(log).isEmpty, "\(scriptErrors(log))")
        let completed = dom.components(separatedBy: "<tr class=\"completed\"").count - 1
        #expect(completed >= 2, "the page did not follow the study: \(completed) completed rows")
        let updated = try #require(
            dom.firstRange(of: #/data-updated-at="([0-9.]+)"/#).map { Double(dom[$0].split(separator: "\"")[1])! })
        let json = try await autotune(["trials", "live", "--format", "json"], in: directory)
        let trials = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let finished = trials.compactMap { ($0["finishedAt"] as? String).flatMap(formatter.date) }
            .filter { $0 > opened }.map(\.timeIntervalSince1970)
        let last = try #require(finished.filter { $0 <= updated }.max(), "no trial finished while the page was open")
        #expect(updated - last <= 2, "the page caught up \(updated - last) s after the trial finished")
        // And what it shows is the study as of that moment: every trial finished by then is a completed row.
        let finishedByThen = trials.filter { trial in
            (trial["finishedAt"] as? String).flatMap(formatter.date).map { $0.timeIntervalSince1970 <= updated }
                ?? false
        }.count { $0["state"] as? String == "completed" }
        #expect(completed == finishedByThen, "\(completed) completed rows, \(finishedByThen) trials completed by then")

        let page = try await fetch(base + "/study/live/trial/0")
        #expect(page.contains("working on "), "the trial page shows the tail of its log")
        #expect(page.contains("Configuration") && page.contains("Timings"))
        let missing = try await fetch(base + "/study/nosuch")
        #expect(missing.contains("no study named &#39;nosuch&#39;"))
        // The route that takes a file name, over real HTTP: a traversal to the database is refused.
        let escape = try await fetch(base + "/study/live/trial/0/file/..%2F..%2F..%2Fautotune.sqlite")
        #expect(!escape.contains("SQLite format"), "a route read a file outside the trial directories")
        let served = try await fetch(base + "/study/live/trial/0/file/command.txt")
        #expect(served.contains("/bin/sh"), "the route serves the trial's own files: \(served)")
    }
}

/// GETs `url` and returns the body, whatever the status.
func fetch(_ url: String) async throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [
        "python3", "-c",
        "import sys,urllib.request,urllib.error\ntry:\n  print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())\nexcept urllib.error.HTTPError as e:\n  print(e.read().decode())",
        url,
    ]
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}
