import Foundation

/// Parses what `nvidia-smi` prints.
///
/// The query CSV is read with or without its header line and with or without units (`81559 MiB`, `100 %`),
/// so both `--format=csv` and `--format=csv,noheader,nounits` work; `[N/A]`, `N/A` and `[Not Supported]`
/// become `nil`.
public enum NvidiaSMI {
    /// The fields Autotune queries, in order.
    public static let queryFields = [
        "index", "uuid", "name", "memory.total", "memory.used", "memory.free", "utilization.gpu",
    ]

    /// The arguments for the GPU query.
    public static var queryArguments: [String] {
        ["--query-gpu=" + queryFields.joined(separator: ","), "--format=csv,noheader,nounits"]
    }

    /// The arguments for the compute-process query.
    public static var appsArguments: [String] {
        ["--query-compute-apps=pid,process_name,used_gpu_memory,gpu_uuid", "--format=csv,noheader,nounits"]
    }

    /// The GPUs in a `--query-gpu` CSV.
    ///
    /// Without a header, columns are ``queryFields`` in order. With one, columns are found by name, so any
    /// superset of the fields in any order parses.
    public static func parseGPUs(_ csv: String) throws(NvidiaSMIError) -> [GPU] {
        var lines = csv.split(whereSeparator: \.isNewline).map(String.init).filter {
            !$0.trimmingWhitespace.isEmpty
        }
        var columns = queryFields
        if let first = lines.first, first.trimmingWhitespace.hasPrefix("index") {
            columns = cells(first).map { $0.split(separator: " ").first.map(String.init) ?? $0 }
            lines.removeFirst()
        }
        guard let indexColumn = columns.firstIndex(of: "index") else {
            throw NvidiaSMIError("the CSV has no index column")
        }
        return try lines.enumerated().map { (lineIndex, line) throws(NvidiaSMIError) in
            let values = cells(line)
            guard values.count == columns.count else {
                throw NvidiaSMIError(
                    "line \(lineIndex + 1) has \(values.count) fields, expected \(columns.count): \(line)")
            }
            func field(_ name: String) -> String? {
                columns.firstIndex(of: name).flatMap { available(values[$0]) }
            }
            guard let index = available(values[indexColumn]).flatMap({ Int($0) }) else {
                throw NvidiaSMIError("line \(lineIndex + 1) has no GPU index: \(line)")
            }
            return GPU(
                index: index,
                uuid: field("uuid"),
                name: field("name"),
                memoryTotalMiB: field("memory.total").flatMap(number),
                memoryUsedMiB: field("memory.used").flatMap(number),
                memoryFreeMiB: field("memory.free").flatMap(number),
                utilizationPercent: field("utilization.gpu").flatMap(number)
            )
        }
    }

    /// The processes in a `--query-compute-apps` CSV (with or without header and units).
    public static func parseProcesses(_ csv: String) throws(NvidiaSMIError) -> [GPUProcess] {
        var processes: [GPUProcess] = []
        for line in csv.split(whereSeparator: \.isNewline).map(String.init) {
            let values = cells(line)
            guard !line.trimmingWhitespace.isEmpty, values.first != "pid" else { continue }
            guard values.count == 4, let pid = Int32(values[0]) else {
                throw NvidiaSMIError("unexpected compute-apps line: \(line)")
            }
            processes.append(
                GPUProcess(
                    pid: pid, name: values[1], usedMemoryMiB: available(values[2]).flatMap(number), gpuUUID: values[3])
            )
        }
        return processes
    }

    private static func cells(_ line: String) -> [String] {
        line.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingWhitespace }
    }

    private static func available(_ value: String) -> String? {
        let bare = value.trimmingCharacters(in: ["[", "]"])
        return ["N/A", "Not Supported", "Unknown Error", ""].contains(bare) ? nil : value
    }

    /// A number without its unit (`81559 MiB`, `100 %`, `696.47 W`).
    private static func number(_ value: String) -> Double? {
        Double(value.split(separator: " ").first.map(String.init) ?? value)
    }
}

/// Output of `nvidia-smi` that cannot be read.
public struct NvidiaSMIError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong.
    public var message: String

    /// Creates an error.
    public init(_ message: String) { self.message = message }

    /// The message.
    public var description: String { "cannot read nvidia-smi output: \(message)" }
}

extension String {
    var trimmingWhitespace: String {
        var text = Substring(self)
        while let first = text.first, first.isWhitespace { text.removeFirst() }
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return String(text)
    }

    func trimmingCharacters(in set: Set<Character>) -> String {
        var text = Substring(self)
        while let first = text.first, set.contains(first) { text.removeFirst() }
        while let last = text.last, set.contains(last) { text.removeLast() }
        return String(text)
    }
}

extension NvidiaSMI {
    /// The GPUs and processes of the table plain `nvidia-smi` prints, for logs and bug reports where only
    /// that table was kept.
    ///
    /// The table has no uuid; a process is tied to its GPU by index, given as the uuid `index:N`.
    public static func parseTable(_ text: String) throws(NvidiaSMIError) -> (gpus: [GPU], processes: [GPUProcess]) {
        let lines = text.split(whereSeparator: \.isNewline).map(String.init)
        let gpuRow = try! NSRegularExpression(pattern: #"^\|\s+(\d+)\s+(.+?)\s+(On|Off)\s+\|"#)
        let usageRow = try! NSRegularExpression(pattern: #"(\d+)MiB\s*/\s*(\d+)MiB\s*\|\s*(\d+)%"#)
        let processRow = try! NSRegularExpression(
            pattern: #"^\|\s+(\d+)\s+\S+\s+\S+\s+(\d+)\s+\S+\s+(\S+)\s+(\d+)MiB\s+\|"#
        )
        var gpus: [GPU] = []
        var processes: [GPUProcess] = []
        var inProcesses = false
        for (index, line) in lines.enumerated() {
            if line.contains("Processes:") { inProcesses = true }
            if inProcesses {
                if let groups = match(processRow, line), let gpu = Int(groups[0]), let pid = Int32(groups[1]) {
                    processes.append(
                        GPUProcess(pid: pid, name: groups[2], usedMemoryMiB: Double(groups[3]), gpuUUID: "index:\(gpu)")
                    )
                }
                continue
            }
            guard let groups = match(gpuRow, line), let gpuIndex = Int(groups[0]) else { continue }
            var gpu = GPU(index: gpuIndex, name: groups[1])
            if index + 1 < lines.count, let usage = match(usageRow, lines[index + 1]) {
                gpu.memoryUsedMiB = Double(usage[0])
                gpu.memoryTotalMiB = Double(usage[1])
                if let used = gpu.memoryUsedMiB, let total = gpu.memoryTotalMiB { gpu.memoryFreeMiB = total - used }
                gpu.utilizationPercent = Double(usage[2])
            }
            gpus.append(gpu)
        }
        guard !gpus.isEmpty else { throw NvidiaSMIError("no GPU row found in the table") }
        return (gpus, processes)
    }

    private static func match(_ regex: NSRegularExpression, _ line: String) -> [String]? {
        guard let result = regex.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)) else { return nil }
        return (1..<result.numberOfRanges).map { group in
            Range(result.range(at: group), in: line).map { String(line[$0]) } ?? ""
        }
    }
}
