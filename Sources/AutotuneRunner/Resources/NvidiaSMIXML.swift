public import Autotune
public import Foundation

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// Reads `nvidia-smi -q -x`: every GPU's index, uuid, name, memory and utilisation, and the compute processes
/// on it. The XML carries more than the CSV query (MIG, processes per GPU), so tools can use either.
public enum NvidiaSMIXML {
    /// The GPUs and processes in the document.
    public static func parse(_ data: Data) throws(NvidiaSMIError) -> (gpus: [GPU], processes: [GPUProcess]) {
        let reader = Reader()
        let parser = XMLParser(data: data)
        parser.delegate = reader
        guard parser.parse() else {
            throw NvidiaSMIError("the XML does not parse: \(parser.parserError.map { "\($0)" } ?? "unknown error")")
        }
        // A truncated document (nvidia-smi killed mid-write) is not always a parse error; its root never closes.
        guard reader.complete else { throw NvidiaSMIError("the XML ends before </nvidia_smi_log>") }
        return (reader.gpus, reader.processes)
    }

    private final class Reader: NSObject, XMLParserDelegate {
        var gpus: [GPU] = []
        var processes: [GPUProcess] = []
        var complete = false
        private var path: [String] = []
        private var text = ""
        private var gpu: [String: String] = [:]
        private var process: [String: String] = [:]

        func parser(
            _ parser: XMLParser,
            didStartElement name: String,
            namespaceURI: String?,
            qualifiedName: String?,
            attributes: [String: String] = [:]
        ) {
            path.append(name)
            text = ""
            if name == "gpu" { gpu = [:] }
            if name == "process_info" { process = [:] }
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            text += string
        }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
            let key = path.drop { $0 != "gpu" }.dropFirst().joined(separator: "/")
            if path.contains("process_info") {
                process[name] = value
            } else if path.contains("gpu") {
                gpu[key] = value
            }
            if name == "process_info", let pid = Int32(process["pid"] ?? "") {
                processes.append(
                    GPUProcess(
                        pid: pid,
                        name: process["process_name"] ?? "",
                        usedMemoryMiB: number(process["used_memory"]),
                        gpuUUID: gpu["uuid"] ?? ""
                    )
                )
            }
            if name == "gpu", let index = Int(gpu["minor_number"] ?? "") {
                gpus.append(
                    GPU(
                        index: index,
                        uuid: gpu["uuid"],
                        name: gpu["product_name"],
                        memoryTotalMiB: number(gpu["fb_memory_usage/total"]),
                        memoryUsedMiB: number(gpu["fb_memory_usage/used"]),
                        memoryFreeMiB: number(gpu["fb_memory_usage/free"]),
                        utilizationPercent: number(gpu["utilization/gpu_util"])
                    )
                )
            }
            if name == "nvidia_smi_log" { complete = true }
            path.removeLast()
            text = ""
        }

        /// `81559 MiB` → 81559; `N/A` → nil.
        private func number(_ value: String?) -> Double? {
            value.flatMap { Double($0.split(separator: " ").first.map(String.init) ?? "") }
        }
    }
}
