def test_bundled_index_answers(bundled_pipeline, netguard_log):
    ans = bundled_pipeline.answer(
        "Which paper combines group quantization with structured sparsity to speed up LLM inference?")
    assert not ans.abstained
    assert ans.citations[0].title.startswith("GQSA")
    assert "[1]" in ans.text
    assert not netguard_log.exists()
