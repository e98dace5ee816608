import Foundation

/// Escapes text for HTML and SVG content and attribute values.
func escape(_ text: String) -> String { HTML.escape(text) }

/// Text in HTML pages.
public enum HTML {
    /// `text` safe inside HTML and SVG content and attribute values (quoted with either quote).
    public static func escape(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.append(character)
            }
        }
        return result
    }
}

/// A number as an SVG coordinate: two decimals, no exponent.
func coordinate(_ value: Double) -> String {
    guard value.isFinite else { return "0" }
    return String(format: "%.2f", value)
}

/// A number for a label: about four significant digits.
func label(_ value: Double) -> String {
    guard value.isFinite else { return "–" }
    let magnitude = abs(value)
    if magnitude != 0, magnitude < 0.001 || magnitude >= 1e7 { return String(format: "%.3g", value) }
    if value == value.rounded(), magnitude < 1e7 { return String(Int(value)) }
    let digits = magnitude >= 100 ? 1 : magnitude >= 10 ? 2 : 3
    return String(format: "%.\(digits)f", value)
}

/// A map from data values to pixels along one axis; logarithmic when asked and every value is positive.
struct Scale {
    let low: Double
    let high: Double
    let start: Double
    let end: Double
    let logarithmic: Bool

    init(values: [Double], start: Double, end: Double, logarithmic: Bool = false, padding: Double = 0.05) {
        let finite = values.filter(\.isFinite)
        let log = logarithmic && !finite.isEmpty && finite.allSatisfy { $0 > 0 }
        let mapped = log ? finite.map { Foundation.log10($0) } : finite
        var low = mapped.min() ?? 0
        var high = mapped.max() ?? 1
        if high - low < 1e-12 {
            low -= 0.5
            high += 0.5
        }
        let pad = (high - low) * padding
        self.low = low - pad
        self.high = high + pad
        self.start = start
        self.end = end
        self.logarithmic = log
    }

    /// The pixel of `value`.
    func callAsFunction(_ value: Double) -> Double {
        let v = logarithmic ? Foundation.log10(max(value, 1e-300)) : value
        return start + (v - low) / (high - low) * (end - start)
    }

    /// The ticks with their labels: on a linear axis at the precision their step needs ("5.4", "5.6", not
    /// "5.400"), on a logarithmic one as numbers.
    var labelledTicks: [(Double, String)] {
        let ticks = self.ticks
        guard !logarithmic, ticks.count >= 2 else {
            // "4.7", not "4.700": a logarithmic axis's ticks are round to two digits.
            return ticks.map { value in
                var text = label(value)
                if text.contains(".") {
                    while text.hasSuffix("0") { text.removeLast() }
                    if text.hasSuffix(".") { text.removeLast() }
                }
                return (value, text)
            }
        }
        let step = abs(ticks[1] - ticks[0])
        let decimals = max(0, Int((-Foundation.log10(step)).rounded(.up)))
        return ticks.map { value in
            guard abs(value) < 1e7, step >= 1e-6 else { return (value, label(value)) }
            return (value, String(format: "%.\(min(decimals, 6))f", value))
        }
    }

    /// About five round tick values across the domain.
    var ticks: [Double] {
        if logarithmic {
            // Decades when the domain spans several; within less, 1-2-5 steps; within less still, even steps
            // in log space at two significant digits.
            let first = Int(low.rounded(.up))
            let last = Int(high.rounded(.down))
            if last - first >= 1 {
                let stride = max(1, (last - first + 4) / 5)
                return Swift.stride(from: first, through: last, by: stride).map { pow(10, Double($0)) }
            }
            let steps = (Int(low.rounded(.down))...Int(high.rounded(.up))).flatMap { power in
                [1.0, 2, 5].map { $0 * pow(10, Double(power)) }
            }.filter { Foundation.log10($0) >= low && Foundation.log10($0) <= high }
            if steps.count >= 2 { return steps }
            return (1...3).map { index in
                let value = pow(10, low + (high - low) * Double(index) / 4)
                let magnitude = pow(10, Foundation.log10(value).rounded(.down) - 1)
                return (value / magnitude).rounded() * magnitude
            }
        }
        let span = high - low
        let rough = span / 5
        let power = pow(10, (Foundation.log10(rough)).rounded(.down))
        let step = [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= rough } ?? rough
        var tick = (low / step).rounded(.up) * step
        var ticks: [Double] = []
        while tick <= high + step * 1e-9, ticks.count < 12 {
            ticks.append(abs(tick) < step * 1e-9 ? 0 : tick)
            tick += step
        }
        return ticks
    }
}

/// One SVG chart: a plot area inside margins, axes, and what is drawn in it.
struct Chart {
    let name: String
    let width: Double
    let height: Double
    let left = 64.0
    let right = 16.0
    let top = 16.0
    let bottom = 40.0
    private(set) var body = ""

    init(name: String, width: Double = 640, height: Double = 300) {
        self.name = name
        self.width = width
        self.height = height
    }

    var plotLeft: Double { left }
    var plotRight: Double { width - right }
    var plotTop: Double { top }
    var plotBottom: Double { height - bottom }

    mutating func append(_ element: String) { body += element + "\n" }

    /// Axes with ticks and titles; `yTicks: false` for charts whose rows carry their own labels.
    mutating func axes(
        x: Scale, y: Scale, xTitle: String, yTitle: String, xLabels: [(Double, String)]? = nil, yTicks: Bool = true
    ) {
        append(
            "<line class=\"axis\" x1=\"\(coordinate(plotLeft))\" y1=\"\(coordinate(plotBottom))\" x2=\"\(coordinate(plotRight))\" y2=\"\(coordinate(plotBottom))\"/>"
        )
        append(
            "<line class=\"axis\" x1=\"\(coordinate(plotLeft))\" y1=\"\(coordinate(plotTop))\" x2=\"\(coordinate(plotLeft))\" y2=\"\(coordinate(plotBottom))\"/>"
        )
        for (value, text) in xLabels ?? x.labelledTicks {
            let px = x(value)
            // A label at the right edge ends there: centred, half of it would be cut off.
            let anchor = px >= plotRight - 12 ? "end" : "middle"
            append(
                "<text class=\"tick\" x=\"\(coordinate(px))\" y=\"\(coordinate(plotBottom + 14))\" text-anchor=\"\(anchor)\">\(escape(text))</text>"
            )
        }
        for (value, text) in yTicks ? y.labelledTicks : [] {
            let py = y(value)
            append(
                "<line class=\"gridline\" x1=\"\(coordinate(plotLeft))\" y1=\"\(coordinate(py))\" x2=\"\(coordinate(plotRight))\" y2=\"\(coordinate(py))\"/>"
            )
            append(
                "<text class=\"tick\" x=\"\(coordinate(plotLeft - 6))\" y=\"\(coordinate(py + 4))\" text-anchor=\"end\">\(escape(text))</text>"
            )
        }
        append(
            "<text class=\"title\" x=\"\(coordinate((plotLeft + plotRight) / 2))\" y=\"\(coordinate(height - 6))\" text-anchor=\"middle\">\(escape(xTitle))</text>"
        )
        append(
            "<text class=\"title\" transform=\"translate(14 \(coordinate((plotTop + plotBottom) / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(yTitle))</text>"
        )
    }

    /// A dashed limit across the plot (an SLO's, the baseline's score): vertical at `x`, or horizontal at `y`.
    mutating func limit(
        x: Double? = nil, y: Double? = nil, title: String, classes: String = "slo", style: String? = nil
    ) {
        let (x1, x2) = x.map { ($0, $0) } ?? (plotLeft, plotRight)
        let (y1, y2) = y.map { ($0, $0) } ?? (plotTop, plotBottom)
        append(
            "<line class=\"\(classes)\" x1=\"\(coordinate(x1))\" y1=\"\(coordinate(y1))\" x2=\"\(coordinate(x2))\" y2=\"\(coordinate(y2))\"\(style.map { " style=\"\($0)\"" } ?? "")><title>\(escape(title))</title></line>"
        )
    }

    /// A marker: a circle, or a cross for trials that produced no score, with a tooltip; `trial` links it to the
    /// same trial's marks in the other charts and its row in the table (a click selects them all).
    mutating func point(
        x: Double, y: Double, kind: String, tooltip: String, color: String? = nil, radius: Double = 4, trial: Int? = nil
    ) {
        let data = trial.map { " data-trial=\"\($0)\"" } ?? ""
        let fill = (color.map { " style=\"fill:\($0)\"" } ?? "") + data
        switch kind {
        case "crashed":
            // A triangle, not the failed trials' cross: a crash is the configuration's fault, a failure may not be.
            let r = radius + 1
            append(
                "<path class=\"point crashed\"\(data) d=\"M\(coordinate(x)),\(coordinate(y - r))L\(coordinate(x + r)),\(coordinate(y + r * 0.8))L\(coordinate(x - r)),\(coordinate(y + r * 0.8))Z\"><title>\(escape(tooltip))</title></path>"
            )
        case "pruned":
            // A bar: stopped early on purpose, neither a success nor a failure.
            let r = radius
            append(
                "<path class=\"point pruned\"\(data) d=\"M\(coordinate(x - r)),\(coordinate(y))L\(coordinate(x + r)),\(coordinate(y))\"><title>\(escape(tooltip))</title></path>"
            )
        case "failed":
            let r = radius
            append(
                "<path class=\"point \(kind)\"\(data) d=\"M\(coordinate(x - r)),\(coordinate(y - r))L\(coordinate(x + r)),\(coordinate(y + r))M\(coordinate(x - r)),\(coordinate(y + r))L\(coordinate(x + r)),\(coordinate(y - r))\"><title>\(escape(tooltip))</title></path>"
            )
        case "baseline":
            let r = radius + 2
            append(
                "<path class=\"point baseline\"\(data) d=\"M\(coordinate(x)),\(coordinate(y - r))L\(coordinate(x + r)),\(coordinate(y))L\(coordinate(x)),\(coordinate(y + r))L\(coordinate(x - r)),\(coordinate(y))Z\"><title>\(escape(tooltip))</title></path>"
            )
        default:
            append(
                "<circle class=\"point \(kind)\" cx=\"\(coordinate(x))\" cy=\"\(coordinate(y))\" r=\"\(coordinate(radius))\"\(fill)><title>\(escape(tooltip))</title></circle>"
            )
        }
    }

    /// The chart as an `<svg>` element.
    var svg: String {
        "<svg class=\"chart\" data-chart=\"\(escape(name))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" width=\"\(Int(width))\" height=\"\(Int(height))\" role=\"img\">\n\(body)</svg>"
    }
}

/// A colour from a perceptually even ramp (viridis's endpoints and middle), `t` in [0, 1].
func ramp(_ t: Double) -> String {
    let stops: [(Double, Double, Double)] = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
    let x = min(max(t.isFinite ? t : 0, 0), 1) * Double(stops.count - 1)
    let index = min(Int(x), stops.count - 2)
    let f = x - Double(index)
    let (a, b) = (stops[index], stops[index + 1])
    let r = Int(a.0 + (b.0 - a.0) * f)
    let g = Int(a.1 + (b.1 - a.1) * f)
    let bl = Int(a.2 + (b.2 - a.2) * f)
    return "rgb(\(r),\(g),\(bl))"
}
