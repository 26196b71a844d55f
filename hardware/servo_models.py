"""Feetech servo models as data: each model's register table, kept as LeRobot keeps it
(``lerobot/motors/feetech/tables.py``, from Feetech's STS/SMS memory table).

Only the STS series is supported. STS servos store 16-bit registers little-endian; SCS
servos store them big-endian and lay out their RAM differently (``Lock`` at 48, no
``Torque_Limit``), so a profile naming an SCS model is refused rather than half driven.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from facetwin.profile import Profile, ProfileError


@dataclass(frozen=True)
class Register:
    address: int
    size: int  # bytes: 1 or 2
    writable: bool = True
    sign_bit: int | None = None  # Feetech's sign-magnitude encoding: the bit holding the sign


EEPROM_END = 40  # registers below this address are EEPROM: written only while unlocked
# The rates an STS servo's Baud_Rate register can select.
BAUD_RATES = (1_000_000, 500_000, 250_000, 128_000, 115_200, 57_600, 38_400, 19_200)


def _ro(address: int, size: int, sign_bit: int | None = None) -> Register:
    return Register(address, size, writable=False, sign_bit=sign_bit)


STS_REGISTERS: dict[str, Register] = {
    # EEPROM
    "Firmware_Major_Version": _ro(0, 1),
    "Firmware_Minor_Version": _ro(1, 1),
    "Model_Number": _ro(3, 2),
    "ID": Register(5, 1),
    "Baud_Rate": Register(6, 1),
    "Return_Delay_Time": Register(7, 1),
    "Response_Status_Level": Register(8, 1),
    "Min_Position_Limit": Register(9, 2),
    "Max_Position_Limit": Register(11, 2),
    "Max_Temperature_Limit": Register(13, 1),
    "Max_Voltage_Limit": Register(14, 1),
    "Min_Voltage_Limit": Register(15, 1),
    "Max_Torque_Limit": Register(16, 2),
    "Phase": Register(18, 1),
    "Unloading_Condition": Register(19, 1),
    "LED_Alarm_Condition": Register(20, 1),
    "P_Coefficient": Register(21, 1),
    "D_Coefficient": Register(22, 1),
    "I_Coefficient": Register(23, 1),
    "Minimum_Startup_Force": Register(24, 2),
    "CW_Dead_Zone": Register(26, 1),
    "CCW_Dead_Zone": Register(27, 1),
    "Protection_Current": Register(28, 2),
    "Angular_Resolution": Register(30, 1),
    "Homing_Offset": Register(31, 2, sign_bit=11),
    "Operating_Mode": Register(33, 1),
    "Protective_Torque": Register(34, 1),
    "Protection_Time": Register(35, 1),
    "Overload_Torque": Register(36, 1),
    # RAM
    "Torque_Enable": Register(40, 1),
    "Acceleration": Register(41, 1),
    "Goal_Position": Register(42, 2),
    "Goal_Time": Register(44, 2),
    "Goal_Velocity": Register(46, 2, sign_bit=15),
    "Torque_Limit": Register(48, 2),
    "Lock": Register(55, 1),
    "Present_Position": _ro(56, 2),
    "Present_Velocity": _ro(58, 2, sign_bit=15),
    "Present_Load": _ro(60, 2, sign_bit=10),
    "Present_Voltage": _ro(62, 1),
    "Present_Temperature": _ro(63, 1),
    "Status": _ro(65, 1),
    "Moving": _ro(66, 1),
    "Present_Current": _ro(69, 2),
}


@dataclass(frozen=True)
class ServoModel:
    name: str
    number: int  # what the Model_Number register reads
    resolution: int = 4096  # ticks per turn
    max_speed: int = 3400  # ticks/s: what goal velocity 0 means (as fast as it goes)
    registers: dict[str, Register] = field(default_factory=lambda: STS_REGISTERS, repr=False)

    def register(self, name: str) -> Register:
        try:
            return self.registers[name]
        except KeyError:
            raise KeyError(f"servo model {self.name} has no register {name!r}") from None


MODELS = {m.name: m for m in (
    ServoModel("STS3215", 777),  # LeRobot's MODEL_NUMBER_TABLE
    ServoModel("STS3250", 2825),  # LeRobot's MODEL_NUMBER_TABLE
    # Not in LeRobot's table and not read off a device here: 0x0C09 follows the series'
    # low byte 9. A script that checks model numbers should treat it as unconfirmed.
    ServoModel("STS3032", 0x0C09),
)}


def servo_model(name: str) -> ServoModel:
    """The model named ``name``, or a KeyError that lists the supported ones."""
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"servo model {name!r} is not supported (supported: "
                       f"{', '.join(sorted(MODELS))}; Feetech STS series only)") from None


def check_hardware(profile: Profile) -> tuple[int, ServoModel]:
    """``profile``'s baud rate and servo model, checked against what the servos offer: a
    ProfileError naming the file and field otherwise. The profile itself knows no servo
    tables, so this is where a bus (real or virtual) finds out."""
    hw = profile.hardware
    try:
        model = servo_model(hw.model)
    except KeyError as exc:
        raise ProfileError.at(profile.path, "hardware", "model", exc.args[0]) from None
    if hw.baudrate not in BAUD_RATES:
        raise ProfileError.at(profile.path, "hardware", "baudrate",
                              f"{hw.baudrate} is not a rate the servos offer "
                              f"({', '.join(map(str, BAUD_RATES))})")
    return hw.baudrate, model
