import Foundation
import Testing

/// Runs `probe` (JavaScript that ends by calling `done(value)`) in the page `file` after the page's own script, in
/// headless chromium with a window `window` wide, and returns `value` decoded from JSON.
private func probe(
    _ file: URL, _ probe: String, window: (Int, Int) = (1400, 900), in directory: URL
) throws -> [String: Any] {
    let page = try String(contentsOf: file, encoding: .utf8)
    let script = """
        <script>(function(){function done(v){document.body.setAttribute('data-probe',JSON.stringify(v));}
        \(probe)})();</script></body>
        """
    let probed = directory.appendingPathComponent("probe-\(UUID().uuidString).html")
    try page.replacingOccurrences(of: "</body>", with: script).write(to: probed, atomically: true, encoding: .utf8)
    let (dom, log) = try render("file://\(probed.path)", window: window, in: directory)
    #expect(scriptErrors(log).isEmpty, "\(scriptErrors(log))")
    let match = try #require(dom.firstMatch(of: #/data-probe="([^"]*)"/#), "the probe did not run")
    let json = String(match.1).replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(
        of: "&lt;", with: "<"
    )
    .replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&#39;", with: "'")
    .replacingOccurrences(of: "&amp;", with: "&")
    return try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
}

/// `autotune dashboard` over `directory`'s database on a port the system chose, and its address; the caller stops
/// it. (A random pick could be a port another test's server, or one of its outgoing connections, holds.)
func startDashboard(in directory: URL) async throws -> (process: Process, base: String) {
    let dashboard = Process()
    dashboard.executableURL = executable
    dashboard.arguments = ["dashboard", "--port", "0"]
    dashboard.currentDirectoryURL = directory
    dashboard.standardOutput = FileHandle.nullDevice
    let stderr = Pipe()
    dashboard.standardError = stderr
    try dashboard.run()
    // The address is printed once the server is bound; read on a thread of its own, since the read blocks.
    let printed: String = await withCheckedContinuation { continuation in
        Thread.detachNewThread {
            var text = ""
            while !text.contains("/\n") {
                let chunk = stderr.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: UTF8.self)
            }
            // Keep draining, so the dashboard never blocks on a full pipe.
            stderr.fileHandleForReading.readabilityHandler = { _ = $0.availableData }
            continuation.resume(returning: text)
        }
    }
    guard let range = printed.range(of: #"http://[0-9.]+:[0-9]+"#, options: .regularExpression) else {
        dashboard.terminate()
        throw DashboardDidNotStart(stderr: printed)
    }
    return (dashboard, String(printed[range]))
}

/// `autotune dashboard` exited, or printed no address.
struct DashboardDidNotStart: Error, CustomStringConvertible {
    let stderr: String
    var description: String { "the dashboard did not start: \(stderr)" }
}

/// A study of two objectives over a grid of eight points (one crashes, two break a constraint), run for real;
/// returns its report's path.
func gridStudy(named name: String = "rep", in directory: URL) async throws -> URL {
    try """
    name: \(name)
    parallel: 2
    parameters:
      x: {type: int, min: 1, max: 4}
      mode: [a, b]
    objectives: [{maximize: tps}, {minimize: ttft}]
    objective: {constraints: [{metric: ttft, max: 30}]}
    baseline: {x: 2, mode: a}
    strategy: grid
    experiment:
      command: [/bin/sh, -c, 'if [ {x} = 3 ] && [ {mode} = b ]; then exit 3; fi; echo "{{\\"tps\\": $(( {x} * 10 )), \\"ttft\\": $(( {x} * {x} * 2 ))}}"']
    """.write(to: directory.appendingPathComponent("\(name).yaml"), atomically: true, encoding: .utf8)
    let run = try await autotune(["run", "\(name).yaml", "--quiet"], in: directory)
    #expect(run.status == 0, "\(run.stderr)")
    let report = try await autotune(["report", name, "-o", "\(name).html"], in: directory)
    #expect(report.status == 0, "\(report.stderr)")
    return directory.appendingPathComponent("\(name).html")
}

/// A section's box in the page: `[left, top, width, height]`.
private let boxes = """
    function box(selector){var e=document.querySelector(selector);if(!e){return null;}var r=e.getBoundingClientRect();
    return [r.left,r.top,r.width,r.height];}
    """

@Suite(.serialized, .timeLimit(.minutes(5))) struct ReportViewTests {
    /// The report uses a wide window (the two history charts side by side, parallel coordinates across the page,
    /// half-width sections in pairs) and keeps to one column in a narrow one, with nothing wider than the screen
    /// and no label cut at a chart's edge (long names: the objective's, vLLM's flags).
    @Test func theReportUsesTheWidthAndKeepsOneColumnOnANarrowScreen() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        try """
        name: long
        parameters:
          max_num_batched_tokens: {type: int, min: 1024, max: 16384, log: true}
          enable_chunked_prefill: {type: bool}
          gpu_memory_utilization: {type: float, min: 0.85, max: 0.97}
        objective: {maximize: output_tokens_per_s_per_gpu}
        budget: {max_trials: 8}
        strategy: random
        experiment:
          command: [/bin/sh, -c, 'echo "{{\\"output_tokens_per_s_per_gpu\\": $(( {max_num_batched_tokens} / 7 + 1000 ))}}"']
        """.write(to: directory.appendingPathComponent("long.yaml"), atomically: true, encoding: .utf8)
        let run = try await autotune(["run", "long.yaml", "--quiet"], in: directory)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try await autotune(["report", "long", "-o", "long.html"], in: directory).status == 0)
        let report = directory.appendingPathComponent("long.html")
        let measure =
            boxes + """
                var cut=[];document.querySelectorAll('svg.chart').forEach(function(svg){var s=svg.getBoundingClientRect();
                svg.querySelectorAll('text').forEach(function(t){var r=t.getBoundingClientRect();
                if(r.left<s.left-1||r.right>s.right+1||r.top<s.top-1||r.bottom>s.bottom+1){
                cut.push(svg.getAttribute('data-chart')+': '+t.textContent);}});});
                done({width:innerWidth,scroll:document.documentElement.scrollWidth,history:box('svg[data-chart="history"]'),
                time:box('svg[data-chart="history-time"]'),parallel:box('svg[data-chart="parallel"]'),
                importance:box('#importance'),contour:box('#contour'),cut:cut});
                """
        let wide = try probe(report, measure, window: (1400, 900), in: directory)
        let width = try #require(wide["width"] as? Double)
        let history = try #require(wide["history"] as? [Double])
        let time = try #require(wide["time"] as? [Double])
        let parallel = try #require(wide["parallel"] as? [Double])
        #expect(history[2] > 0.4 * width && time[2] > 0.4 * width, "each history chart takes half the page: \(wide)")
        #expect(abs(history[1] - time[1]) < 1, "the two history charts share a row: \(wide)")
        #expect(parallel[2] > 0.85 * width, "parallel coordinates span the page: \(wide)")
        let importance = try #require(wide["importance"] as? [Double])
        let contour = try #require(wide["contour"] as? [Double])
        #expect(abs(importance[1] - contour[1]) < 1, "importance and the contour side by side: \(wide)")
        #expect((wide["cut"] as? [String])?.isEmpty == true, "labels cut at a chart's edge: \(wide["cut"] ?? "")")

        let narrow = try probe(report, measure, window: (420, 900), in: directory)
        let narrowWidth = try #require(narrow["width"] as? Double)
        #expect(try #require(narrow["scroll"] as? Double) <= narrowWidth + 1, "wider than the screen: \(narrow)")
        let first = try #require(narrow["history"] as? [Double])
        let second = try #require(narrow["time"] as? [Double])
        #expect(second[1] >= first[1] + first[3] - 1, "one column: the charts stack: \(narrow)")
        #expect(first[2] <= narrowWidth, "\(narrow)")
        #expect((narrow["cut"] as? [String])?.isEmpty == true, "labels cut at a chart's edge: \(narrow["cut"] ?? "")")
    }

    /// A click on a trial's marker selects the same trial in every chart that draws it and in the table, in the
    /// offline report; a second click clears it.
    @Test func aClickSelectsTheTrialInEveryChartAndTheTable() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let report = try await gridStudy(in: directory)
        let result = try probe(
            report,
            """
            var first=document.querySelector('svg[data-chart="history"] [data-trial="1"]');
            first.dispatchEvent(new MouseEvent('click',{bubbles:true}));
            var where={};document.querySelectorAll('.selected').forEach(function(e){var svg=e.closest('svg');
            var key=svg?svg.getAttribute('data-chart'):e.closest('table').id||'table';where[key]=(where[key]||0)+1;});
            var others=document.querySelectorAll('.selected:not([data-trial="1"])').length;
            var bar=document.getElementById('selection').textContent;
            first.dispatchEvent(new MouseEvent('click',{bubbles:true}));
            done({where:where,others:others,bar:bar,after:document.querySelectorAll('.selected').length});
            """, in: directory)
        let marked = try #require(result["where"] as? [String: Int])
        // Trial 1 (x = 1, mode = b) completed: it is in every chart of completed trials and the trials table.
        for chart in ["history", "history-time", "pareto", "parallel", "slice-x", "slice-mode", "timeline", "edf"] {
            #expect(marked[chart] == 1, "trial 1 is not selected in \(chart): \(marked)")
        }
        #expect(marked["trials-table"] == 1, "\(marked)")
        #expect(result["others"] as? Int == 0)
        #expect((result["bar"] as? String)?.contains("Trial 1 selected") == true)
        #expect(result["after"] as? Int == 0, "a second click clears the selection")
    }

    /// Two studies side by side, on the command line's page and the dashboard's: each study's best-so-far line
    /// against trials and against time, and with two objectives each study's front on one chart.
    @Test func comparedStudiesShareTheirCharts() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        for (name, parallel) in [("one", 1), ("four", 3)] {
            try """
            name: \(name)
            parallel: \(parallel)
            parameters: {x: {type: int, min: 1, max: 6}}
            objective: {maximize: score}
            strategy: grid
            experiment:
              command: [/bin/sh, -c, 'sleep 0.2; echo "{{\\"score\\": $(( ({x} - 4) * (4 - {x}) ))}}"']
            """.write(to: directory.appendingPathComponent("\(name).yaml"), atomically: true, encoding: .utf8)
            let run = try await autotune(["run", "\(name).yaml", "--quiet"], in: directory)
            #expect(run.status == 0, "\(run.stderr)")
        }
        let compare = try await autotune(["compare", "one", "four", "--format", "html"], in: directory)
        #expect(compare.status == 0, "\(compare.stderr)")
        let page = directory.appendingPathComponent("one-vs-four.html")
        let html = try String(contentsOf: page, encoding: .utf8)
        #expect(!html.contains("http://") && !html.contains("https://"), "the page must open offline")
        let (dom, log) = try render("file://\(page.path)", in: directory)
        #expect(scriptErrors(log).isEmpty, "\(scriptErrors(log))")
        for chart in ["compare-trials", "compare-time"] {
            let svg = try #require(dom.firstMatch(of: try Regex("data-chart=\"\(chart)\"[\\s\\S]*?</svg>")))
            let text = String(dom[svg.range])
            #expect(text.contains("data-study=\"one\"") && text.contains("data-study=\"four\""), "\(chart)")
            // Each line has a marker per improvement and ends at the grid's best, x = 4, scoring 0.
            #expect(text.contains(#/one, trial [0-9]+: 0</#) && text.contains(#/four, trial [0-9]+: 0</#), "\(chart)")
            #expect(points(in: dom, chart: chart) >= 2)
        }
        #expect(dom.contains("<td>one</td>") && dom.contains("<td>four</td>"))

        _ = try await gridStudy(named: "rep", in: directory)
        _ = try await gridStudy(named: "rep2", in: directory)
        let two = try await autotune(
            ["compare", "rep", "rep2", "--format", "html", "-o", "fronts.html"], in: directory)
        #expect(two.status == 0, "\(two.stderr)")
        let (frontDom, _) = try render("file://\(directory.path)/fronts.html", in: directory)
        let best = try await autotune(["best", "rep", "--format", "json"], in: directory)
        let front = (try JSONSerialization.jsonObject(with: Data(best.stdout.utf8)) as? [String: Any])?["front"]
        let size = try #require(front as? [Any], "\(best.stdout)").count
        #expect(points(in: frontDom, chart: "compare-fronts") == 2 * size)

        // The dashboard's page: the studies ticked on its front page, linked to their own pages.
        let (dashboard, base) = try await startDashboard(in: directory)
        defer {
            dashboard.terminate()
            dashboard.waitUntilExit()
        }
        var studies = ""
        for _ in 0..<100 where !studies.contains("name=\"study\" value=\"four\"") {
            studies = (try? await fetch(base + "/")) ?? ""
            if !studies.contains("value=\"four\"") { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(studies.contains("<form action=\"/compare\""), "the studies page offers the comparison")
        let served = try await fetch(base + "/compare?study=one&study=four")
        #expect(served.contains("data-chart=\"compare-time\"") && served.contains("href=\"/study/four\""))
        #expect(try await fetch(base + "/compare?study=one").contains("compare needs two or more studies"))
        #expect(try await fetch(base + "/compare?study=one&study=rep").contains("has another objective"))
    }

    /// A serving study with a capacity search, on the simulated engine: the report draws every trial's throughput
    /// against its latency with the SLO, the recommended trial's levels (one marker each, the baseline's beside
    /// them), and its requests' latency distributions beside the baseline's; the trial page has a column per
    /// level, its figures once, and the raw benchmark file as a link, not dumped.
    @Test func aServingStudysViewsShowItsLoadLevelsAndLatencies() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let server =
            #"["{autotune}", simulate, --port, "{port}", --model, "{model}", --time-scale, "0.5", --load-seconds, "0.2"]"#
        // A port range of its own: scripts/test runs ServingTests' studies at the same time, in another process,
        // and two studies on separate databases both find a free port bindable before either server binds it.
        try """
        name: srv
        parallel: 2
        parameters:
          max_num_seqs: [2, 32, 128]
        objective: {maximize: max_request_rate}
        baseline: {max_num_seqs: 2}
        strategy: grid
        resources: {ports: 37000-37999}
        experiment:
          kind: serving
          server: {command: \(server), model: sim}
          benchmark: {requests: 40, input_tokens: 64, output_tokens: 16, search: {rate: [1, 200], tolerance: 0.2, max_levels: 4}, slo: {ttft_ms_p99: 400}}
          timeouts: {deploy: 30s, ready: 60s, benchmark: 5m}
        """.write(to: directory.appendingPathComponent("srv.yaml"), atomically: true, encoding: .utf8)
        let run = try await autotune(["run", "srv.yaml", "--quiet"], in: directory)
        #expect(run.status == 0, "\(run.stderr)")
        let report = try await autotune(["report", "srv", "-o", "srv.html"], in: directory)
        #expect(report.status == 0, "\(report.stderr)")
        let best = try await autotune(["best", "srv", "--format", "json"], in: directory)
        let recommended = try #require(
            ((try JSONSerialization.jsonObject(with: Data(best.stdout.utf8)) as? [String: Any])?["trial"]
                as? [String: Any])?["number"] as? Int,
            "\(best.stdout)")
        func levels(_ trial: Int) throws -> [[String: Any]] {
            let data = try Data(
                contentsOf: directory.appendingPathComponent("autotune-trials/srv/\(trial)/benchmark.json"))
            return try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        }
        let (dom, log) = try render("file://\(directory.path)/srv.html", in: directory)
        #expect(scriptErrors(log).isEmpty, "\(scriptErrors(log))")
        #expect(points(in: dom, chart: "throughput-latency") == 3)
        let baselineLevels = recommended == 0 ? 0 : try levels(0).count
        #expect(points(in: dom, chart: "capacity") == (try levels(recommended).count) + baselineLevels)
        let capacity = try #require(dom.firstMatch(of: #/data-chart="capacity"[\s\S]*?</svg>/#))
        #expect(dom[capacity.range].contains("class=\"slo\""), "the SLO is drawn")
        let cdf = try #require(dom.firstMatch(of: #/data-chart="cdf-ttft_ms"[\s\S]*?</svg>/#))
        #expect(dom[cdf.range].contains("data-series=\"trial\""))
        #expect(dom[cdf.range].contains("data-series=\"baseline\"") == (recommended != 0))

        let (dashboard, base) = try await startDashboard(in: directory)
        defer {
            dashboard.terminate()
            dashboard.waitUntilExit()
        }
        var page = ""
        for _ in 0..<100 where !page.contains("By load level") {
            page = (try? await fetch(base + "/study/srv/trial/\(recommended)")) ?? ""
            if !page.contains("By load level") { try await Task.sleep(for: .milliseconds(100)) }
        }
        let table = try #require(page.firstMatch(of: #/<table class="levels">[\s\S]*?</thead>/#))
        #expect(
            page[table.range].components(separatedBy: "<th>r").count - 1 == (try levels(recommended).count),
            "a column per level")
        #expect(page[table.range].contains("(reported)"))
        let figures = page.firstMatch(of: #/<h2>Figures</h2>[\s\S]*?</table>/#).map { String(page[$0.range]) } ?? ""
        #expect(!figures.contains("ttft_ms_p99"), "a level's figure is listed once, in the levels' table")
        #expect(page.contains("/study/srv/trial/\(recommended)/file/benchmark.json\""), "the raw file is a link")
        #expect(!page.contains("\"records\""), "the raw file is not dumped on the page")
        #expect(page.contains("data-chart=\"capacity\"") && page.contains("data-chart=\"cdf-e2e_ms\""))
        let raw = try await fetch(base + "/study/srv/trial/\(recommended)/file/benchmark.json")
        #expect(raw.contains("\"records\""))
    }
}
