"""What every explorer promises, checked on each case of ``EXPLORER_CASES``: moving its control
redraws the picture and the message, the update is timed, and the widget shows the controls,
the message and the picture."""

import pytest

from lessons_lib.explorers.cases import EXPLORER_CASES

CASES = pytest.mark.parametrize("case", EXPLORER_CASES, ids=[case.id for case in EXPLORER_CASES])


@CASES
def test_each_move_of_the_control_sends_a_new_picture_and_message(case):
    explorer = case.build()
    control = case.control_of(explorer)
    assert explorer.picture.value and explorer.message.value, "the first figure is drawn on construction"
    for value in case.moves(explorer, 3):
        before = explorer.picture.value
        control.value = value
        assert explorer.picture.value != before, f"{case.control} = {value!r} left the picture as it was"
        assert explorer.message.value
        assert explorer.last_update_seconds > 0


@CASES
def test_the_widget_holds_the_controls_the_message_and_the_picture(case):
    explorer = case.build()
    controls, message, picture = explorer.widget.children
    assert list(controls.children) == explorer.controls
    assert case.control_of(explorer) in explorer.controls
    assert message is explorer.message and picture is explorer.picture
