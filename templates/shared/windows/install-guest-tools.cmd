@echo off
rem Installs the QEMU guest agent and, when the template put one on the CD,
rem cloudbase-init from whichever drive holds the cd_files CD. Shared by the
rem Vista-era and later templates; %1 is the agent's path from the shared map
rem (guest-agent\qemu-ga-x86_64.msi), %2 the cloudbase-init MSI's file name.
for %%d in (D E F G H) do (
  if exist %%d:\%~1 msiexec /i %%d:\%~1 /qn /norestart
  if not "%~2"=="" if exist %%d:\%~2 msiexec /i %%d:\%~2 /qn /norestart RUN_SERVICE_AS_LOCAL_SYSTEM=1
)
exit /b 0
