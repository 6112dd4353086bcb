import Testing

@testable import OrchestratorCron

/// Spec §2, "everything else is an error": each class, with the field and the text in the message.
struct ParseErrorTests {
    @Test func theMessageNamesTheExpressionTheFieldAndTheText() {
        #expect(parseError("5-1 * * * *")?.description == #"cron expression "5-1 * * * *": minute: range 5-1 is reversed"#)
        #expect(parseError("0 22-2 * * *")?.description == #"cron expression "0 22-2 * * *": hour: range 22-2 is reversed"#)
        #expect(parseError("0 0 * * SAT-MON")?.description
            == #"cron expression "0 0 * * SAT-MON": day of week: range SAT-MON is reversed"#)
        #expect(parseError("60 * * * *")?.description == #"cron expression "60 * * * *": minute: value 60 is out of range 0-59"#)
        #expect(parseError("* * * * * *")?.description
            == #"cron expression "* * * * * *": expected 5 fields (minute hour day-of-month month day-of-week), found 6"#)
    }

    /// (expression, field named in the message or nil, a fragment of the reason)
    @Test(arguments: [
        // Field count.
        ("", nil, "empty"), ("   \t ", nil, "empty"), ("* * * *", nil, "found 4"), ("* * * * * *", nil, "found 6"),
        ("0 0 1 1 * 2026", nil, "found 6"), ("0 0 0 1 1 * 2026", nil, "found 7"),
        // Values out of range.
        ("60 * * * *", "minute", "out of range 0-59"), ("* 24 * * *", "hour", "out of range 0-23"),
        ("* * 0 * *", "day of month", "out of range 1-31"), ("* * 32 * *", "day of month", "out of range 1-31"),
        ("* * * 0 *", "month", "out of range 1-12"), ("* * * 13 *", "month", "out of range 1-12"),
        ("* * * * 8", "day of week", "out of range 0-7"), ("99999999999999999999 * * * *", "minute", "out of range"),
        ("0-60 * * * *", "minute", "value 60 is out of range"),
        // Reversed ranges (no wrap-around).
        ("5-1 * * * *", "minute", "range 5-1 is reversed"), ("* 22-2 * * *", "hour", "reversed"),
        ("* * * DEC-JAN *", "month", "reversed"), ("* * * * 6-1", "day of week", "reversed"),
        // Steps.
        ("*/0 * * * *", "minute", "at least 1"), ("1-5/0 * * * *", "minute", "at least 1"),
        ("*/ * * * *", "minute", "missing step"), ("*/x * * * *", "minute", "not a number"),
        ("*/1/2 * * * *", "minute", "more than one step"), ("5/10 * * * *", "minute", "only * or a range"),
        ("* * * * MON/2", "day of week", "only * or a range"),
        // Open point, decided: a step larger than the field's maximum is rejected.
        ("*/60 * * * *", "minute", "larger than the field's maximum 59"), ("* */24 * * *", "hour", "maximum 23"),
        ("* * */32 * *", "day of month", "maximum 31"), ("* * * */13 *", "month", "maximum 12"),
        ("* * * * */8", "day of week", "maximum 7"), ("0-59/60 * * * *", "minute", "maximum 59"),
        // Empty list items.
        ("1,,2 * * * *", "minute", "empty list item"), ("1, * * * *", "minute", "empty list item"),
        (",1 * * * *", "minute", "empty list item"), ("* * * * ,", "day of week", "empty list item"),
        // Numbers: ASCII digits only.
        ("+5 * * * *", "minute", "invalid value"), ("-5 * * * *", "minute", "malformed range"),
        ("1.5 * * * *", "minute", "invalid value"), ("٣ * * * *", "minute", "invalid value"),
        ("5x * * * *", "minute", "invalid value"), ("1-2-3 * * * *", "minute", "malformed range"),
        ("1- * * * *", "minute", "malformed range"), ("*5 * * * *", "minute", "* stands alone"),
        ("** * * * *", "minute", "* stands alone"), ("*-5 * * * *", "minute", "* stands alone"),
        // Names: three letters, right kind, right field.
        ("0 0 * January *", "month", "unknown name"), ("0 0 * * Monday", "day of week", "unknown name"),
        ("0 0 * * MO", "day of week", "unknown name"), ("0 0 * MON *", "month", "day-of-week name"),
        ("0 0 * * JAN", "day of week", "month name"), ("JAN * * * *", "minute", "only in the month and day-of-week"),
        ("0 MON * * *", "hour", "only in the month and day-of-week"),
        ("0 0 FRI * *", "day of month", "only in the month and day-of-week"),
        // Macros.
        ("@fortnightly", nil, "unknown macro"), ("@daily 5", nil, "must stand alone"),
        ("@daily * * * * *", nil, "must stand alone"), ("@Daily", nil, "lowercase"), ("@REBOOT", nil, "lowercase"),
        ("@", nil, "unknown macro"),
        // Other dialects.
        ("0 0 L * *", "day of month", "L is an extension"), ("0 0 LW * *", "day of month", "L is an extension"),
        ("0 0 15W * *", "day of month", "W is an extension"), ("0 0 W * *", "day of month", "W is an extension"),
        ("0 0 * * 5L", "day of week", "L is an extension"), ("0 0 * * 5#3", "day of week", "# is an extension"),
        ("0 0 ? * MON", "day of month", "? is an extension"), ("H * * * *", "minute", "H is an extension"),
        ("H/15 * * * *", "minute", "H is an extension"), ("0 H(0-5) * * *", "hour", "H is an extension"),
        ("0~30 * * * *", "minute", "~ is an extension"), ("~ * * * *", "minute", "~ is an extension"),
    ] as [(String, String?, String)])
    func refused(expression: String, field: String?, fragment: String) throws {
        let error = try #require(parseError(expression), "\(expression) should be refused")
        guard case let .invalidExpression(text, reportedField, reason) = error else {
            Issue.record("unexpected \(error)")
            return
        }
        #expect(text == expression)
        #expect(reportedField == field, "\(error)")
        #expect(reason.contains(fragment), "\(error)")
        #expect(!error.description.contains("\n"))
    }
}
